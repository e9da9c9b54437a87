//! `portcullis test`: a policy's test cases (`x.tests.json` beside `x.wasm`) through the
//! real engine under production limits — per case pass or fail with the reason, fuel, wall
//! time and peak memory, and a summary; exit 0 only when every case passed. The format of
//! a case is in `portcullis_gate::cases`. A policy project is built first when stale.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use portcullis_engine::{CompiledPolicy, Engine};
use portcullis_gate::cases::{self, Case, CaseFile, CaseResult, RuleUnderTest};

use crate::project::{Project, cache};
use crate::{Exit, input};

/// Arguments of `portcullis test`.
#[derive(clap::Args)]
pub struct Args {
    /// Test files (`x.tests.json`, run against `x.wasm` beside it), modules (`x.wasm`, with
    /// `x.tests.json` beside it), directories of them, or policy projects (`portcullis
    /// new`: built first when a source changed). Default: the current directory.
    paths: Vec<PathBuf>,
    /// The rule's configuration (JSON, or @file) for cases that do not set their own.
    #[arg(long)]
    config: Option<String>,
    #[command(flatten)]
    budget: input::BudgetArgs,
    /// One JSON object per case on standard output (the summary goes to standard error).
    #[arg(long)]
    json: bool,
}

/// Reads a test file, each case's event parsed (paths relative to the file).
pub fn read_cases(path: &Path) -> Result<Vec<Case>> {
    let files: Vec<CaseFile> = serde_json::from_slice(&input::read(path)?)
        .with_context(|| format!("`{}` is not a list of test cases", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    files
        .into_iter()
        .map(|file| {
            let name = file.name.clone();
            Case::new(file, |event| input::read(&dir.join(event)))
                .with_context(|| format!("test `{name}` in `{}`", path.display()))
        })
        .collect()
}

/// A test file, its module, and the module compiled when `test` just built it.
type Suite = (PathBuf, PathBuf, Option<Arc<CompiledPolicy>>);

/// The suites `paths` name. A policy project (`portcullis new`) is built
/// first when a source changed; a build that fails ends the run with its exit code.
fn suites(paths: &[PathBuf], engine: &Engine) -> Result<Result<Vec<Suite>, Exit>> {
    let mut suites = Vec::new();
    let here = [PathBuf::from(".")];
    for path in if paths.is_empty() { &here[..] } else { paths } {
        let name = path.to_string_lossy();
        // A project made by `new`: a language's marker and `NAME.tests.json`.
        let project = Project::find(path)
            .ok()
            .filter(|project| project.tests().is_file());
        if let Some(project) = project {
            let mut built = None;
            if project.stale() {
                match super::build::build_and_report(&project, engine)? {
                    Ok(policy) => built = Some(policy),
                    Err(exit) => return Ok(Err(exit)),
                }
            }
            suites.push((project.tests(), project.module(), built));
        } else if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading `{}`", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".tests.json"))
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("`{}` has no `*.tests.json` files", path.display());
            }
            suites.extend(found.into_iter().map(|tests| {
                let module = module_of(&tests);
                (tests, module, None)
            }));
        } else if name.ends_with(".tests.json") {
            suites.push((path.clone(), module_of(path), None));
        } else if name.ends_with(".wasm") {
            suites.push((path.with_extension("tests.json"), path.clone(), None));
        } else {
            bail!(
                "`{}` is not a directory, a `.tests.json` file or a `.wasm` module",
                path.display()
            );
        }
    }
    Ok(Ok(suites))
}

/// `x.wasm` for `x.tests.json`.
fn module_of(tests: &Path) -> PathBuf {
    let name = tests.to_string_lossy();
    PathBuf::from(format!(
        "{}.wasm",
        name.strip_suffix(".tests.json").unwrap_or(&name)
    ))
}

/// Runs `portcullis test`.
pub fn run(args: Args) -> Result<Exit> {
    let engine = input::engine()?;
    let config = match &args.config {
        Some(config) => input::json_arg(config, "--config")?.to_string(),
        None => "null".to_owned(),
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    let suites = match suites(&args.paths, &engine)? {
        Ok(suites) => suites,
        Err(exit) => return Ok(exit),
    };
    for (tests, module, built) in suites {
        let cases = read_cases(&tests)?;
        let bytes = input::read(&module)?;
        let dir = module.parent().unwrap_or(Path::new("."));
        let policy = match built.map_or_else(|| cache::load(&engine, dir, &bytes), Ok) {
            Ok(policy) => policy,
            Err(error) => {
                eprintln!("{}: cannot be loaded: {error}", module.display());
                return Ok(Exit::RuleFailed);
            }
        };
        let rule = RuleUnderTest {
            config: config.clone(),
            budget: args
                .budget
                .budget_for(portcullis_engine::Language::of(&bytes))?,
            ..RuleUnderTest::default()
        };
        if !args.json {
            println!("{} ({})", tests.display(), module.display());
        }
        for case in &cases {
            let result = cases::run(&engine, &policy, &rule, case);
            if result.passed {
                passed += 1;
            } else {
                failed += 1;
            }
            if args.json {
                let mut line = serde_json::to_value(&result)?;
                if let Some(obj) = line.as_object_mut() {
                    obj.insert("file".into(), tests.display().to_string().into());
                }
                println!("{line}");
            } else {
                print_result(&result);
            }
        }
    }
    let summary = format!("{passed} passed, {failed} failed");
    if args.json {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    Ok(if failed == 0 { Exit::Allow } else { Exit::Deny })
}

fn print_result(result: &CaseResult) {
    println!(
        "  {}  {:<40} {:<6} fuel {:>9}  {:>8.3} ms  {} KiB",
        if result.passed { "PASS" } else { "FAIL" },
        result.name,
        result.outcome,
        result.fuel,
        result.duration_us as f64 / 1000.0,
        result.peak_memory / 1024
    );
    for failure in &result.failures {
        println!("        {failure}");
    }
}
