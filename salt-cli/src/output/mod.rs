//! Salt's outputters (`salt/output/`): `nested` (the default), `json`, `yaml`, `txt`, `raw`, `quiet`,
//! and `no_return` for minions that did not return; the choice and colour rules of
//! `salt/output/__init__.py` (`get_printout`, `try_printout`).

mod colors;
pub mod json;
pub mod key;
pub mod nested;
pub mod yaml;

use crate::py::{as_str, py_repr, py_str, splitlines, Value};

/// How output is printed: the `--out`, `--out-indent`, colour flags of the CLI.
#[derive(Debug, Clone, Default)]
pub struct OutputOptions {
    /// `--out` (`output`): overrides the outputter a return asks for.
    pub output: Option<String>,
    /// `--out-indent` (`output_indent`) for json/yaml.
    pub output_indent: Option<i64>,
    /// ANSI colours on.
    pub color: bool,
    /// `--static`: with no `--out`, the outputter is Salt's default.
    pub static_: bool,
}

/// The output flags every tool shares (`salt`, `salt-run`, `salt-key`), flattened into each
/// tool's command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// Print the output using the specified outputter.
    #[arg(long = "out", visible_alias = "output")]
    pub out: Option<String>,
    /// Print the output indented by the provided value in spaces.
    #[arg(long = "out-indent", visible_alias = "output-indent")]
    pub out_indent: Option<i64>,
    /// Disable all colored output.
    #[arg(long = "no-color", visible_alias = "no-colour")]
    pub no_color: bool,
    /// Force colored output.
    #[arg(long = "force-color", visible_alias = "force-colour")]
    pub force_color: bool,
}

impl OutputArgs {
    /// The options these flags give; `configured` is the config's `output`, used when `--out`
    /// is not given.
    pub fn options(&self, configured: Option<String>, static_: bool) -> OutputOptions {
        OutputOptions {
            output: self.out.clone().or(configured),
            output_indent: self.out_indent,
            color: OutputOptions::colour_for_stdout(self.force_color, self.no_color),
            static_,
        }
    }
}

impl OutputOptions {
    /// Colours as Salt decides them: `--force-color`, else off with `--no-color` or when stdout is
    /// not a terminal.
    pub fn colour_for_stdout(force: bool, no_color: bool) -> bool {
        use std::io::IsTerminal;
        force || (!no_color && std::io::stdout().is_terminal())
    }
}

/// `txt.output`: `key: line` per line of each value.
fn txt(data: &Value) -> String {
    let mut ret = String::new();
    match data {
        Value::Map(entries) => {
            for (k, v) in entries {
                let key = as_str(k).map_or_else(|| py_str(k), str::to_owned);
                match as_str(v) {
                    Some(t) => {
                        for line in splitlines(t) {
                            ret.push_str(&format!("{key}: {line}\n"));
                        }
                    }
                    None => ret.push_str(&format!("{key}: {}\n", py_str(v))),
                }
            }
        }
        other => match as_str(other) {
            Some(t) => {
                ret.push_str(t);
                ret.push('\n');
            }
            None => {
                ret.push_str(&py_repr(other));
                ret.push('\n');
            }
        },
    }
    ret
}

/// The outputter name used for `out` (as asked for by a return, or `""`), honouring `--out`.
pub fn outputter_name(out: &str, opts: &OutputOptions) -> String {
    let name = match &opts.output {
        Some(o) if o != "highstate" => o.as_str(),
        _ => out,
    };
    match name {
        "text" => "txt".into(),
        "" => "nested".into(),
        other => other.into(),
    }
}

/// `try_printout`: the text an outputter makes of `data`, right-stripped; `None` when there is
/// nothing to print.
pub fn format(data: &Value, out: &str, opts: &OutputOptions, retcode: i64) -> Option<String> {
    let name = outputter_name(out, opts);
    let text = match name.as_str() {
        "json" => {
            let indent = match opts.output_indent {
                None => Some(4),
                Some(n) if n < 0 => None,
                Some(n) => usize::try_from(n).ok(),
            };
            json::dumps(data, indent)
        }
        "yaml" => yaml::dump(data),
        "txt" => txt(data),
        "raw" | "pprint" => py_str(data),
        "quiet" => String::new(),
        "key" => key::key(data, opts.color),
        "no_return" => nested::no_return(data, opts.color),
        // Salt's highstate outputter is not done: its data prints as nested, without the warning.
        "nested" | "highstate" => nested::nested(data, retcode, opts.color),
        other => {
            if other != "grains" {
                tracing::error!("Invalid outputter {other} specified, fall back to nested");
            }
            nested::nested(data, retcode, opts.color)
        }
    };
    let trimmed = text.trim_end();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// `display_output`: print what [`format`] gives, if anything (a closed stdout is not an error,
/// as in Salt).
pub fn display(data: &Value, out: &str, opts: &OutputOptions, retcode: i64) {
    if let Some(text) = format(data, out, opts, retcode) {
        print_line(&text);
    }
}

/// `print_cli`: one line on stdout, ignoring a closed pipe.
pub fn print_line(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::py::string;

    #[test]
    fn txt_raw_and_choice() {
        let data = Value::Map(vec![
            (string("m1"), string("one\ntwo")),
            (string("m2"), Value::Map(vec![(string("k"), Value::from(1))])),
        ]);
        let opts = OutputOptions { output: Some("txt".into()), ..OutputOptions::default() };
        assert_eq!(format(&data, "nested", &opts, 0).as_deref(), Some("m1: one\nm1: two\nm2: {'k': 1}"));
        let opts = OutputOptions { output: Some("raw".into()), ..OutputOptions::default() };
        assert_eq!(format(&data, "", &opts, 0).as_deref(), Some("{'m1': 'one\\ntwo', 'm2': {'k': 1}}"));
        // --out beats the outputter a return asks for; "highstate" does not (Salt's #29796).
        assert_eq!(
            outputter_name("nested", &OutputOptions { output: Some("json".into()), ..Default::default() }),
            "json"
        );
        assert_eq!(
            outputter_name("grains", &OutputOptions { output: Some("highstate".into()), ..Default::default() }),
            "grains"
        );
        assert_eq!(outputter_name("", &OutputOptions::default()), "nested");
        // Nothing to print for an empty mapping.
        assert_eq!(format(&Value::Map(vec![]), "", &OutputOptions::default(), 0), None);
    }
}
