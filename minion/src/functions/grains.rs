//! `modules/grains.py`: `items`, `get`, `item`.

use super::{Bound, Ctx, Def, FnError, FnSpec, Output, Signature};
use salt_core::value::{py_str, string, Value};

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
            if salt_core::value::is_true(b.get("sanitize")) {
                tracing::warn!("grains.items sanitize=True is not supported; returning the grains as is");
            }
            Ok(Output::value(grains.clone()))
        }
        "grains.get" => {
            let key = py_str(b.get("key"));
            let delimiter = py_str(b.get("delimiter"));
            Ok(Output::value(
                salt_core::matcher::traverse(grains, &key, &delimiter)
                    .cloned()
                    .unwrap_or_else(|| b.get("default").clone()),
            ))
        }
        "grains.item" => {
            let default = b.kwarg("default").cloned().unwrap_or_else(|| string(""));
            let delimiter = b.kwarg("delimiter").map_or_else(|| ":".to_string(), py_str);
            let mut out: Vec<(Value, Value)> = Vec::new();
            for arg in &b.varargs {
                let v = salt_core::matcher::traverse(grains, &py_str(arg), &delimiter)
                    .cloned()
                    .unwrap_or_else(|| default.clone());
                out.retain(|(k, _)| !salt_core::value::py_eq(k, arg));
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
    use salt_core::value::{py_str, string, Value};

    async fn call(fun: &str, args: Vec<Value>) -> Result<Value, FnError> {
        dispatch(fun, &args, &ctx()).await.map(|o| o.ret)
    }

    fn kw(k: &str, v: Value) -> Value {
        salt_core::value::map([("__kwarg__", Value::Boolean(true)), (k, v)])
    }

    #[tokio::test]
    async fn get_nested_and_default() {
        assert_eq!(call("grains.get", vec![string("os")]).await, Ok(string("Debian")));
        assert_eq!(call("grains.get", vec![string("pkg:apache")]).await, Ok(string("httpd")));
        assert_eq!(call("grains.get", vec![string("roles:1")]).await, Ok(string("db")));
        assert_eq!(call("grains.get", vec![string("nope")]).await, Ok(string("")));
        assert_eq!(call("grains.get", vec![string("nope"), string("dflt")]).await, Ok(string("dflt")));
        assert_eq!(call("grains.get", vec![string("nope"), kw("default", Value::from(3))]).await, Ok(Value::from(3)));
        assert_eq!(call("grains.get", vec![string("pkg|apache"), string("delimiter=|")]).await, Ok(string("httpd")));
    }

    #[tokio::test]
    async fn item_and_items() {
        let r = call("grains.item", vec![string("os"), string("nope"), string("pkg:apache")]).await;
        assert_eq!(r.map(|v| py_str(&v)), Ok("{'os': 'Debian', 'nope': '', 'pkg:apache': 'httpd'}".into()));
        let r = call("grains.items", vec![]).await;
        assert_eq!(r.map(|v| salt_core::value::get(&v, "os").cloned()), Ok(Some(string("Debian"))));
    }
}
