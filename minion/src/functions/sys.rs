//! `modules/sysmod.py`: `list_functions`, `list_modules`, `doc`.

use super::{all_functions, Bound, Ctx, FnError, FnSpec, Output, Signature};
use salt_core::fnmatch::fnmatch;
use salt_core::value::{py_str, str_list, string, Value};

/// The functions of this module.
pub static FUNCTIONS: &[FnSpec] = &[
    FnSpec {
        name: "sys.doc",
        sig: Signature { name: "doc", params: &[], varargs: true, varkw: false },
        doc: "Return the docstrings for all modules. Optionally, specify a module or a\nfunction to narrow the selection.\n\nCLI Example:\n\n    salt '*' sys.doc\n    salt '*' sys.doc sys\n    salt '*' sys.doc sys.doc",
    },
    FnSpec {
        name: "sys.list_functions",
        sig: Signature { name: "list_functions", params: &[], varargs: true, varkw: true },
        doc: "List the functions for all modules. Optionally, specify a module or modules\nfrom which to list.\n\nCLI Example:\n\n    salt '*' sys.list_functions\n    salt '*' sys.list_functions sys\n    salt '*' sys.list_functions 'sys.list_*'",
    },
    FnSpec {
        name: "sys.list_modules",
        sig: Signature { name: "list_modules", params: &[], varargs: true, varkw: false },
        doc: "List the modules loaded on the minion\n\nCLI Example:\n\n    salt '*' sys.list_modules\n    salt '*' sys.list_modules 's*'",
    },
];

fn names() -> Vec<&'static str> {
    all_functions().into_iter().map(|f| f.name).collect()
}

/// `sys.list_functions(*args)`.
pub fn list_functions(args: &[String]) -> Vec<String> {
    if args.is_empty() {
        return names().into_iter().map(str::to_string).collect();
    }
    let mut out: Vec<String> = Vec::new();
    for module in args {
        for f in names() {
            let hit = if module.contains('*') || module.contains('.') {
                fnmatch(f, module)
            } else {
                f.starts_with(&format!("{module}."))
            };
            if hit && !out.iter().any(|o| o == f) {
                out.push(f.to_string());
            }
        }
    }
    out.sort();
    out
}

/// Call one `sys.*` function.
pub fn dispatch(fun: &str, b: &Bound, _ctx: &Ctx) -> Result<Output, FnError> {
    let args: Vec<String> = b.varargs.iter().map(py_str).collect();
    match fun {
        "sys.list_functions" => Ok(Output::value(str_list(list_functions(&args)))),
        "sys.list_modules" => {
            let mut mods: Vec<String> = names()
                .into_iter()
                .filter_map(|f| f.split('.').next().map(str::to_string))
                .filter(|m| args.is_empty() || args.iter().any(|a| fnmatch(m, a) || m == a))
                .collect();
            mods.sort();
            mods.dedup();
            Ok(Output::value(str_list(mods)))
        }
        "sys.doc" => {
            let mut docs: Vec<(Value, Value)> = Vec::new();
            for f in all_functions() {
                let hit = args.is_empty()
                    || args.iter().any(|m| {
                        if m.contains('*') {
                            fnmatch(f.name, m)
                        } else if m.is_empty() {
                            true
                        } else {
                            let target = if m.ends_with('.') { m.clone() } else { format!("{m}.") };
                            f.name == m || f.name.starts_with(&target)
                        }
                    });
                if hit {
                    docs.push((string(f.name), string(f.doc)));
                }
            }
            Ok(Output::value(Value::Map(docs)))
        }
        _ => Err(FnError::NotAvailable(fun.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing() {
        let all = list_functions(&[]);
        assert!(all.contains(&"test.ping".to_string()) && all.contains(&"cmd.run_all".to_string()));
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
        assert_eq!(list_functions(&["sys".into()]), vec!["sys.doc", "sys.list_functions", "sys.list_modules"]);
        assert_eq!(list_functions(&["test.p*".into()]), vec!["test.ping"]);
        assert_eq!(list_functions(&["cmd.run".into()]), vec!["cmd.run"]);
    }
}
