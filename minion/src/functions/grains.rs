//! `modules/grains.py`: `items`, `get`, `item`.

use super::{Bound, Ctx, Def, FnError, FnSpec, Output, Signature};
use crate::value::{py_str, s, Value};

/// The functions of this module.
pub static FUNCTIONS: &[FnSpec] = &[
    FnSpec {
        name: "grains.get",
        sig: Signature {
            name: "get",
            params: &[("key", Def::Required), ("default", Def::Str("")), ("delimiter", Def::Str(":")), ("ordered", Def::Bool(true))],
            varargs: false,
            varkw: false,
        },
        doc: "Attempt to retrieve the named value from grains, if the named value is not\navailable return the passed default. The default return is an empty string.\n\nThe value can also represent a value in a nested dict using a \":\" delimiter\nfor the dict.\n\nCLI Example:\n\n    salt '*' grains.get pkg:apache\n    salt '*' grains.get abc::def|ghi delimiter='|'",
    },
    FnSpec {
        name: "grains.item",
        sig: Signature { name: "item", params: &[], varargs: true, varkw: true },
        doc: "Return one or more grains\n\nCLI Example:\n\n    salt '*' grains.item os\n    salt '*' grains.item os osrelease oscodename",
    },
    FnSpec {
        name: "grains.items",
        sig: Signature { name: "items", params: &[("sanitize", Def::Bool(false))], varargs: false, varkw: false },
        doc: "Return all of the minion's grains\n\nCLI Example:\n\n    salt '*' grains.items",
    },
];

/// Call one `grains.*` function.
pub fn dispatch(fun: &str, b: &Bound, ctx: &Ctx) -> Result<Output, FnError> {
    let grains: &Value = &ctx.grains;
    match fun {
        "grains.items" => {
            if crate::value::is_true(b.get("sanitize")) {
                tracing::warn!("grains.items sanitize=True is not supported; returning the grains as is");
            }
            Ok(Output::value(grains.clone()))
        }
        "grains.get" => {
            let key = py_str(b.get("key"));
            let delimiter = py_str(b.get("delimiter"));
            Ok(Output::value(
                crate::matcher::traverse(grains, &key, &delimiter).cloned().unwrap_or_else(|| b.get("default").clone()),
            ))
        }
        "grains.item" => {
            let default = b.kwarg("default").cloned().unwrap_or_else(|| s(""));
            let delimiter = b.kwarg("delimiter").map_or_else(|| ":".to_string(), py_str);
            let mut out: Vec<(Value, Value)> = Vec::new();
            for arg in &b.varargs {
                let v = crate::matcher::traverse(grains, &py_str(arg), &delimiter)
                    .cloned()
                    .unwrap_or_else(|| default.clone());
                out.retain(|(k, _)| !crate::value::py_eq(k, arg));
                out.push((arg.clone(), v));
            }
            Ok(Output::value(Value::Map(out)))
        }
        _ => Err(FnError::NotAvailable(fun.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::ctx;
    use super::super::{dispatch, FnError};
    use crate::value::{py_str, s, Value};

    async fn call(fun: &str, args: Vec<Value>) -> Result<Value, FnError> {
        dispatch(fun, &args, &ctx()).await.map(|o| o.ret)
    }

    fn kw(k: &str, v: Value) -> Value {
        crate::value::map([("__kwarg__", Value::Boolean(true)), (k, v)])
    }

    #[tokio::test]
    async fn get_nested_and_default() {
        assert_eq!(call("grains.get", vec![s("os")]).await, Ok(s("Debian")));
        assert_eq!(call("grains.get", vec![s("pkg:apache")]).await, Ok(s("httpd")));
        assert_eq!(call("grains.get", vec![s("roles:1")]).await, Ok(s("db")));
        assert_eq!(call("grains.get", vec![s("nope")]).await, Ok(s("")));
        assert_eq!(call("grains.get", vec![s("nope"), s("dflt")]).await, Ok(s("dflt")));
        assert_eq!(call("grains.get", vec![s("nope"), kw("default", Value::from(3))]).await, Ok(Value::from(3)));
        assert_eq!(call("grains.get", vec![s("pkg|apache"), s("delimiter=|")]).await, Ok(s("httpd")));
    }

    #[tokio::test]
    async fn item_and_items() {
        let r = call("grains.item", vec![s("os"), s("nope"), s("pkg:apache")]).await;
        assert_eq!(r.map(|v| py_str(&v)), Ok("{'os': 'Debian', 'nope': '', 'pkg:apache': 'httpd'}".into()));
        let r = call("grains.items", vec![]).await;
        assert_eq!(r.map(|v| crate::value::get(&v, "os").cloned()), Ok(Some(s("Debian"))));
    }
}
