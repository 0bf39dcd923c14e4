//! `modules/saltutil.py`: `find_job`, `running` (over [`super::JobRegistry`], Salt's `cachedir/proc`).

use super::{Bound, Ctx, Def, FnError, FnSpec, Output, Signature};
use salt_core::value::{py_str, Value};

/// The functions of this module.
pub static FUNCTIONS: &[FnSpec] = &[
    FnSpec {
        name: "saltutil.find_job",
        sig: Signature { name: "find_job", params: &[("jid", Def::Required)], varargs: false, varkw: false },
        doc: "Return the data for a specific job id that is currently running.\n\njid\n    The job id to search for and return data.\n\nCLI Example:\n\n    salt '*' saltutil.find_job <job id>\n\nNote that the find_job function only returns job information when the job is still running. If\nthe job is currently running, the output looks something like this ... If the job has already\ncompleted, the job cannot be found and therefore the function returns an empty dictionary.",
    },
    FnSpec {
        name: "saltutil.running",
        sig: Signature { name: "running", params: &[], varargs: false, varkw: false },
        doc: "Return the data on all running salt processes on the minion\n\nCLI Example:\n\n    salt '*' saltutil.running",
    },
];

/// Call one `saltutil.*` function.
pub fn dispatch(fun: &str, b: &Bound, ctx: &Ctx) -> Result<Output, FnError> {
    let me = ctx.jid();
    match fun {
        "saltutil.running" => Ok(Output::value(Value::Array(ctx.jobs.running(me.as_deref())))),
        "saltutil.find_job" => {
            let jid = py_str(b.get("jid"));
            Ok(Output::value(ctx.jobs.find(&jid, me.as_deref()).unwrap_or_else(|| Value::Map(Vec::new()))))
        }
        _ => Err(FnError::NotAvailable(fun.to_string())),
    }
}
