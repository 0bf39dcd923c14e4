//! `salt-rs`: Salt 3008's `salt` command (`salt/cli/salt.py`, `SaltCMDOptionParser`).
//!
//! `salt-rs [options] '<target>' <function> [arguments]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use salt_cli::client::{retcode_of, ClientError, Job, LocalClient, MinionReturn};
use salt_cli::opts::{current_user, MasterOpts, DEFAULT_CONFIG_DIR};
use salt_cli::output::{self, OutputArgs, OutputOptions};
use salt_cli::py::{string, Value};

#[derive(Debug, Parser)]
#[command(
    name = "salt",
    override_usage = "salt [options] '<target>' <function> [arguments]",
    about = "Salt allows for commands to be executed across a swath of remote systems in\nparallel, so they can be both controlled and queried with ease.",
    disable_version_flag = true
)]
struct Cli {
    /// Pass in an alternative configuration directory.
    #[arg(short = 'c', long = "config-dir", env = "SALT_CONFIG_DIR", default_value = DEFAULT_CONFIG_DIR)]
    config_dir: PathBuf,
    /// Change the timeout, if applicable, for the running command (in seconds).
    #[arg(short = 't', long = "timeout")]
    timeout: Option<i64>,
    /// Return the data from minions as a group after they all return.
    #[arg(short = 's', long = "static")]
    static_: bool,
    /// Run the salt command but don't wait for a reply.
    #[arg(long = "async")]
    async_: bool,
    /// Turn on command verbosity, display jid and active job queries.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Execute the routine on a random subset of the targeted minions that have the function.
    #[arg(long = "subset", default_value_t = 0)]
    subset: usize,
    /// Hide minions that timeout.
    #[arg(long = "hide-timeout")]
    hide_timeout: bool,
    /// Display jid without the additional output of --verbose.
    #[arg(long = "show-jid")]
    show_jid: bool,
    /// Instead of using shell globs, use pcre regular expressions.
    #[arg(short = 'E', long = "pcre", group = "target")]
    pcre: bool,
    /// Comma (or space) separated list of minion ids.
    #[arg(short = 'L', long = "list", group = "target")]
    list: bool,
    /// Target by grain: 'os:Arch*'.
    #[arg(short = 'G', long = "grain", group = "target")]
    grain: bool,
    /// Target by grain with a pcre: 'os:Arch.*'.
    #[arg(short = 'P', long = "grain-pcre", group = "target")]
    grain_pcre: bool,
    /// Target a nodegroup defined in the master config.
    #[arg(short = 'N', long = "nodegroup", group = "target")]
    nodegroup: bool,
    /// Compound target ('G@os:RedHat and webser* or E@database.*').
    #[arg(short = 'C', long = "compound", group = "target")]
    compound: bool,
    /// Target by pillar: 'role:web'.
    #[arg(short = 'I', long = "pillar", group = "target")]
    pillar: bool,
    /// Target by pillar with a pcre.
    #[arg(short = 'J', long = "pillar-pcre", group = "target")]
    pillar_pcre: bool,
    /// Match on IP address or CIDR notation.
    #[arg(short = 'S', long = "ipcidr", group = "target")]
    ipcidr: bool,
    /// Change the default delimiter for matching in multi-level data structures.
    #[arg(long = "delimiter", default_value = ":")]
    delimiter: String,
    /// Set an alternative return method.
    #[arg(long = "return", default_value = "")]
    return_: String,
    /// Set an alternative return configuration.
    #[arg(long = "return_config", default_value = "")]
    return_config: String,
    /// Set any returner options at the command line.
    #[arg(long = "return_kwargs")]
    return_kwargs: Option<String>,
    /// Pass metadata into Salt, used to search jobs.
    #[arg(long = "metadata")]
    metadata: Option<String>,
    /// Ask targeted minions to fire salt/job/<jid>/start/<id> when they accept the job.
    #[arg(long = "start-event")]
    start_event: bool,
    /// Return the documentation for the specified module, or for all modules (sys.doc).
    #[arg(short = 'd', long = "doc", visible_alias = "documentation")]
    doc: bool,
    /// Show the minions expected to match a target. Does not issue any command.
    #[arg(long = "preview-target")]
    preview_target: bool,
    /// Display summary information about a salt command.
    #[arg(long = "summary")]
    summary: bool,
    #[command(flatten)]
    output: OutputArgs,
    /// Console logging log level.
    #[arg(short = 'l', long = "log-level", default_value = "warning")]
    log_level: String,
    /// Target, function and arguments.
    #[arg(allow_hyphen_values = false)]
    args: Vec<String>,
}

impl Cli {
    fn tgt_type(&self) -> &'static str {
        [
            (self.pcre, "pcre"),
            (self.list, "list"),
            (self.grain, "grain"),
            (self.grain_pcre, "grain_pcre"),
            (self.nodegroup, "nodegroup"),
            (self.compound, "compound"),
            (self.pillar, "pillar"),
            (self.pillar_pcre, "pillar_pcre"),
            (self.ipcidr, "ipcidr"),
        ]
        .into_iter()
        .find(|(on, _)| *on)
        .map_or("glob", |(_, t)| t)
    }
}

fn main() -> ExitCode {
    let mut cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { salt_cli::EX_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    salt_cli::init_logging(&cli.log_level);
    if cli.doc {
        // `-d`: the target defaults to '*' and the function is sys.doc, the rest its argument.
        if cli.args.is_empty() {
            cli.args.push("*".into());
        }
        if cli.args.len() < 2 || cli.args[1] != "sys.doc" {
            cli.args.insert(1, "sys.doc".into());
        }
        if cli.args.len() > 3 {
            eprintln!(
                "Usage: salt [options] '<target>' <function> [arguments]\n\nsalt: error: You can only get \
                 documentation for one method at one time."
            );
            return ExitCode::from(salt_cli::EX_USAGE as u8);
        }
    }
    if cli.args.len() < 2 && !(cli.preview_target && cli.args.len() == 1) {
        eprintln!("Usage: salt [options] '<target>' <function> [arguments]\n\nIncomplete options passed.\n");
        return ExitCode::from(42);
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    ExitCode::from(rt.block_on(run(cli)) as u8)
}

fn print_error(e: &ClientError, opts: &OutputOptions) {
    // The stock CLI prints these through the outputter (a plain string prints as itself).
    output::display(&string(e.to_string()), "", opts, 1);
}

async fn run(cli: Cli) -> i32 {
    let opts = match MasterOpts::load(&cli.config_dir) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let out_opts = cli.output.options(opts.raw.opt_string("output").ok().flatten(), cli.static_);
    let timeout_secs = match cli.timeout {
        Some(t) if t > 0 => t as u64,
        _ => opts.timeout,
    };
    let timeout = Duration::from_secs(timeout_secs);
    let tgt_type = cli.tgt_type();
    let tgt = if cli.list {
        let raw = &cli.args[0];
        let ids: Vec<Value> = if raw.contains(',') {
            raw.replace(' ', "").split(',').map(string).collect()
        } else {
            raw.split_whitespace().map(string).collect()
        };
        Value::Array(ids)
    } else {
        string(cli.args[0].as_str())
    };
    let (tgt, tgt_type) = match resolve_nodegroups(&opts, tgt, tgt_type) {
        Ok(t) => t,
        Err(msg) => {
            output::display(&string(msg), "", &out_opts, 1);
            return 1;
        }
    };
    if cli.preview_target {
        return preview_target(&opts, &tgt, &tgt_type, &cli.delimiter, &out_opts);
    }
    let mut kwargs: Vec<(String, Value)> = vec![
        ("show_timeout".into(), Value::Boolean(!cli.hide_timeout)),
        ("show_jid".into(), Value::Boolean(cli.show_jid)),
        ("delimiter".into(), string(cli.delimiter.as_str())),
    ];
    if !cli.return_config.is_empty() {
        kwargs.push(("ret_config".into(), string(cli.return_config.as_str())));
    }
    if let Some(rk) = &cli.return_kwargs {
        kwargs.push(("ret_kwargs".into(), salt_core::args::yamlify_arg(rk)));
    }
    if let Some(md) = &cli.metadata {
        kwargs.push(("metadata".into(), salt_core::args::yamlify_arg(md)));
    }
    if cli.start_event {
        kwargs.push(("start_event".into(), Value::Boolean(true)));
    }
    let job = Job {
        tgt,
        tgt_type,
        fun: cli.args[1].clone(),
        arg: salt_cli::args::parse_input(&cli.args[2..]),
        ret: cli.return_.clone(),
        jid: String::new(),
        kwargs: kwargs.clone(),
    };
    let mut client = LocalClient::new(opts, current_user());

    if cli.async_ {
        return match client.publish(&job, timeout).await {
            Ok(pd) => {
                output::print_line(&format!(
                    "Executed command with job ID: {}",
                    pd.map_or_else(|| "0".to_string(), |p| p.jid)
                ));
                0
            }
            Err(e) => {
                eprintln!("ERROR: {e}");
                1
            }
        };
    }

    // Subscribe first, so no return is missed.
    let mut events = if client.master_running() {
        match client.subscribe(timeout).await {
            Ok(ev) => Some(ev),
            Err(e) => {
                print_error(&e, &out_opts);
                return 1;
            }
        }
    } else {
        None
    };
    let mut job = job;
    if cli.subset > 0 {
        if let Some(ev) = events.as_mut() {
            match subset_targets(&mut client, ev, &job, cli.subset, timeout, cli.verbose).await {
                Ok(ids) => {
                    job.tgt = Value::Array(ids.into_iter().map(string).collect());
                    job.tgt_type = "list".into();
                }
                Err(e) => {
                    print_error(&e, &out_opts);
                    return 1;
                }
            }
        }
    }
    let pub_data = match client.publish(&job, timeout).await {
        Ok(pd) => pd,
        Err(e) => {
            print_error(&e, &out_opts);
            return 1;
        }
    };
    let (Some(pub_data), Some(events)) = (pub_data, events.as_mut()) else {
        eprintln!("ERROR: No return received");
        return 2;
    };
    if cli.verbose {
        print_jid_header(&pub_data.jid);
    } else if cli.show_jid {
        output::print_line(&format!("jid: {}", pub_data.jid));
    }
    let extra: Vec<(String, Value)> =
        kwargs.into_iter().filter(|(k, _)| k != "show_timeout" && k != "show_jid").collect();
    let mut all: Vec<MinionReturn> = Vec::new();
    let docs = cli.args[1] == "sys.doc";
    let gather = client.returns(events, &pub_data, timeout, &extra, |r| {
        if !cli.static_ && !docs {
            let data = Value::Map(vec![(string(r.id.as_str()), r.ret.clone())]);
            output::display(&data, r.out.as_deref().unwrap_or(""), &out_opts, retcode_of(&r));
        }
        all.push(r);
    });
    tokio::select! {
        () = gather => {}
        _ = tokio::signal::ctrl_c() => {
            // `cmd_cli`'s KeyboardInterrupt: the job goes on; say how to find its returns.
            let jid = &pub_data.jid;
            eprintln!(
                "\nThis job's jid is: {jid}\nExiting gracefully on Ctrl-c\nThe minions may not have all finished \
                 running and any remaining minions will return upon completion. To look up the return data for this \
                 job later, run the following command:\n\nsalt-run jobs.lookup_jid {jid}"
            );
            return 1;
        }
    }
    if docs {
        return print_docs(&all, &out_opts, cli.output.out.is_some());
    }
    if cli.static_ {
        // Salt runs --static as a batch of 100%, which leaves out the minions that do not answer
        // and does not look at return codes.
        let data =
            Value::Map(all.iter().filter(|r| !r.failed).map(|r| (string(r.id.as_str()), r.ret.clone())).collect());
        output::display(&data, "", &out_opts, 0);
        if all.iter().all(|r| r.failed) {
            eprintln!("ERROR: No return received");
            return 2;
        }
        return 0;
    }
    let summary = cli.summary || client.opts.raw.boolean("cli_summary", false).unwrap_or(false);
    if summary && out_opts.output.is_none() {
        print_summary(&all, cli.verbose);
    }
    if all.iter().any(|r| retcode_of(r) != 0) {
        eprintln!("ERROR: Minions returned with non-zero exit code");
        return 1;
    }
    0
}

/// `-N`, and `N@` words of a compound target, expanded from the master's `nodegroups`
/// (`LocalClient._prep_pub`).
fn resolve_nodegroups(opts: &MasterOpts, tgt: Value, tgt_type: &str) -> Result<(Value, String), String> {
    use master::targeting::nodegroup_words;
    let nodegroups = &opts.master.nodegroups;
    match tgt_type {
        "nodegroup" => {
            let name = salt_cli::py::as_str(&tgt).unwrap_or_default().to_string();
            if salt_cli::py::get(nodegroups, &name).is_none() {
                return Err(format!("Node group {name} unavailable in {}", opts.conf_file.display()));
            }
            let words = nodegroup_words(&name, nodegroups, &mut Vec::new());
            Ok((string(words.join(" ")), "compound".into()))
        }
        "compound" => {
            let words: Vec<String> = match &tgt {
                Value::Array(a) => a.iter().filter_map(salt_cli::py::as_str).map(str::to_owned).collect(),
                other => {
                    salt_cli::py::as_str(other).unwrap_or_default().split_whitespace().map(str::to_owned).collect()
                }
            };
            let mut out = Vec::new();
            for w in words {
                match w.strip_prefix("N@").filter(|n| !n.is_empty()) {
                    Some(name) => out.extend(nodegroup_words(name, nodegroups, &mut Vec::new())),
                    None => out.push(w),
                }
            }
            Ok((string(out.join(" ")), "compound".into()))
        }
        _ => Ok((tgt, tgt_type.to_string())),
    }
}

/// `_print_docs`: every function's documentation once (from the first minion that has it), sorted;
/// minions that did not return are left out.
fn print_docs(all: &[MinionReturn], out: &OutputOptions, with_out: bool) -> i32 {
    let answered: Vec<&MinionReturn> = all.iter().filter(|r| !r.failed).collect();
    if all.is_empty() {
        eprintln!("No minions found to gather docs from");
        return 2;
    }
    let mut docs: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    for r in answered {
        match &r.ret {
            Value::Map(funs) => {
                for (fun, doc) in funs {
                    let name = salt_cli::py::as_str(fun).map_or_else(|| salt_cli::py::py_str(fun), str::to_owned);
                    if !docs.contains_key(&name) && salt_cli::py::truthy(doc) {
                        docs.insert(name, doc.clone());
                    }
                }
            }
            other => {
                if let Some(text) = salt_cli::py::as_str(other) {
                    eprintln!("{text}");
                    return 2;
                }
            }
        }
    }
    for (fun, doc) in docs {
        if with_out {
            output::display(&Value::Map(vec![(string(fun.as_str()), doc)]), "nested", out, 0);
        } else {
            output::print_line(&format!("{fun}:"));
            output::print_line(&salt_cli::py::as_str(&doc).map_or_else(|| salt_cli::py::py_str(&doc), str::to_owned));
            output::print_line("");
        }
    }
    0
}

/// What `-v` prints before a job's returns.
fn print_jid_header(jid: &str) {
    let msg = format!("Executing job with jid {jid}");
    output::print_line(&format!("{msg}\n{}\n", "-".repeat(msg.len())));
}

/// `--subset N` (`LocalClient.cmd_subset`): ask the targeted minions for `sys.list_functions`, then
/// pick at most `n` of those that have the function, at random.
async fn subset_targets(
    client: &mut LocalClient,
    events: &mut salt_cli::events::Subscriber,
    job: &Job,
    n: usize,
    timeout: Duration,
    verbose: bool,
) -> Result<Vec<String>, ClientError> {
    let list = Job { fun: "sys.list_functions".into(), arg: Vec::new(), ..job.clone() };
    let Some(pd) = client.publish(&list, timeout).await? else { return Ok(Vec::new()) };
    if verbose {
        print_jid_header(&pd.jid);
    }
    let mut answers: Vec<(String, Value)> = Vec::new();
    client
        .returns(events, &pd, timeout, &job.kwargs, |r| {
            if !r.failed {
                answers.push((r.id, r.ret));
            }
        })
        .await;
    // random.shuffle (Fisher-Yates over OS randomness).
    let mut rnd = vec![0u8; 8 * answers.len()];
    if salt_proto::util::fill_random(&mut rnd).is_ok() {
        for i in (1..answers.len()).rev() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&rnd[8 * i..8 * i + 8]);
            let j = (u64::from_le_bytes(b) % (i as u64 + 1)) as usize;
            answers.swap(i, j);
        }
    }
    let has = |functions: &Value| match functions {
        Value::Array(a) => a.iter().any(|f| salt_cli::py::as_str(f) == Some(job.fun.as_str())),
        Value::Map(m) => m.iter().any(|(k, _)| salt_cli::py::as_str(k) == Some(job.fun.as_str())),
        _ => false,
    };
    Ok(answers.into_iter().filter(|(_, f)| has(f)).map(|(id, _)| id).take(n).collect())
}

/// `--preview-target` (`_preview_target`): the minions the target names, as the master would
/// resolve them from its key store and data cache on this host; nothing is sent.
fn preview_target(opts: &MasterOpts, tgt: &Value, tgt_type: &str, delimiter: &str, out: &OutputOptions) -> i32 {
    let found = master::targeting::check_minions_in(
        &master::keys::KeyStore::at(opts.pki_dir.clone()),
        &master::datacache::DataCache::new(&opts.cachedir),
        &opts.master.nodegroups,
        tgt,
        tgt_type,
        delimiter,
    );
    let list = Value::Array(found.minions.iter().map(|m| string(m.as_str())).collect());
    output::display(&list, "nested", out, 0);
    if found.minions.is_empty() {
        eprintln!("ERROR: No return received");
        return 2;
    }
    0
}

/// `_print_returns_summary`.
fn print_summary(all: &[MinionReturn], verbose: bool) {
    let returned = all.iter().filter(|r| !r.failed).count();
    let not_returned: Vec<&str> = all.iter().filter(|r| r.failed).map(|r| r.id.as_str()).collect();
    let failed: Vec<&str> = all.iter().filter(|r| !r.failed && retcode_of(r) != 0).map(|r| r.id.as_str()).collect();
    output::print_line("\n");
    output::print_line("-------------------------------------------");
    output::print_line("Summary");
    output::print_line("-------------------------------------------");
    output::print_line(&format!("# of minions targeted: {}", all.len()));
    output::print_line(&format!("# of minions returned: {returned}"));
    output::print_line(&format!("# of minions that did not return: {}", not_returned.len()));
    output::print_line(&format!("# of minions with errors: {}", failed.len()));
    if verbose {
        if !not_returned.is_empty() {
            output::print_line(&format!("Minions not responding: {}", not_returned.join(" ")));
        }
        if !failed.is_empty() {
            output::print_line(&format!("Minions with failures: {}", failed.join(" ")));
        }
    }
    output::print_line("-------------------------------------------");
}
