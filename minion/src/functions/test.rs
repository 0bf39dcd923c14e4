//! `modules/test.py`: `ping`, `echo`, `version`, `sleep`.

use super::{py_int, Bound, Ctx, Def, FnError, FnSpec, Output, Signature};
use salt_core::value::{string, Value};

/// The functions of this module.
pub static FUNCTIONS: &[FnSpec] = &[
    FnSpec {
        name: "test.echo",
        sig: Signature { name: "echo", params: &[("text", Def::Required)], varargs: false, varkw: false },
        doc: "Return a string - used for testing the connection\n\nCLI Example:\n\n    salt '*' test.echo 'foo bar baz quo qux'",
    },
    FnSpec {
        name: "test.ping",
        sig: Signature { name: "ping", params: &[], varargs: false, varkw: false },
        doc: "Used to make sure the minion is up and responding. Not an ICMP ping.\n\nReturns ``True``.\n\nCLI Example:\n\n    salt '*' test.ping",
    },
    FnSpec {
        name: "test.sleep",
        sig: Signature { name: "sleep", params: &[("length", Def::Required)], varargs: false, varkw: false },
        doc: "Instruct the minion to initiate a process that will sleep for a given\nperiod of time.\n\nCLI Example:\n\n    salt '*' test.sleep 20",
    },
    FnSpec {
        name: "test.version",
        sig: Signature { name: "version", params: &[], varargs: false, varkw: false },
        doc: "Return the version of salt on the minion\n\nCLI Example:\n\n    salt '*' test.version",
    },
];

/// Call one `test.*` function.
pub async fn dispatch(fun: &str, b: &Bound, ctx: &Ctx) -> Result<Output, FnError> {
    match fun {
        "test.ping" => {
            tracing::debug!("test.ping received for minion '{}'", ctx.config.id);
            Ok(Output::value(Value::Boolean(true)))
        }
        "test.echo" => Ok(Output::value(b.get("text").clone())),
        "test.version" => Ok(Output::value(string(salt_core::SALT_VERSION))),
        "test.sleep" => {
            let secs = py_int(b.get("length"))?;
            if secs > 0 {
                tokio::time::sleep(std::time::Duration::from_secs(secs.unsigned_abs())).await;
            } else if secs < 0 {
                return Err(FnError::Exception("ValueError: sleep length must be non-negative".into()));
            }
            Ok(Output::value(Value::Boolean(true)))
        }
        _ => Err(FnError::NotAvailable(fun.to_string())),
    }
}
