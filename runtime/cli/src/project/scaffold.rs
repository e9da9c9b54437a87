//! `portcullis new`'s files: a policy project in Rust, TypeScript or Python — the rule, its
//! unit tests, two Cognito events, test cases, a manifest and a README of four commands —
//! with the SDK and the contract this binary speaks copied in, so the project builds on its
//! own, wherever it lives.

use std::path::{Path, PathBuf};

use portcullis_engine::CONTRACT_VERSION;

use super::Lang;

/// A file of the project: its path and its text, `{{name}}` not yet replaced.
type File = (&'static str, &'static str);

macro_rules! files {
    ($($path:literal => $source:literal),* $(,)?) => {
        &[$(($path, include_str!($source))),*]
    };
}

const COMMON: &[File] = files! {
    "README.md" => "../../templates/common/README.md",
    "manifest.json" => "../../templates/common/manifest.json",
    "{{name}}.tests.json" => "../../templates/common/tests.json",
    "events/pre-auth.json" => "../../templates/common/events/pre-auth.json",
    "events/token.json" => "../../templates/common/events/token.json",
};

const RUST: &[File] = files! {
    "Cargo.toml" => "../../templates/rust/Cargo.toml",
    // The workspace's lock: cargo keeps the versions the project uses and drops the rest,
    // so a policy builds with exactly the dependencies the SDK was tested with.
    "Cargo.lock" => "../../../../Cargo.lock",
    "src/lib.rs" => "../../templates/rust/src/lib.rs",
    ".gitignore" => "../../templates/rust/gitignore",
    "portcullis-sdk/src/lib.rs" => "../../../../sdk/src/lib.rs",
    "portcullis-sdk/src/alloc.rs" => "../../../../sdk/src/alloc.rs",
    "portcullis-sdk/src/request.rs" => "../../../../sdk/src/request.rs",
    "portcullis-sdk/src/testing.rs" => "../../../../sdk/src/testing.rs",
    "portcullis-sdk/src/verdict.rs" => "../../../../sdk/src/verdict.rs",
    "portcullis-sdk/wit/policy.wit" => "../../../../sdk/wit/policy.wit",
};

const TS: &[File] = files! {
    "package.json" => "../../templates/ts/package.json",
    "tsconfig.json" => "../../templates/ts/tsconfig.json",
    "app.ts" => "../../templates/ts/app.ts",
    "app.test.ts" => "../../templates/ts/app.test.ts",
    ".gitignore" => "../../templates/ts/gitignore",
    "portcullis/portcullis.js" => "../../../../sdk/js/portcullis.js",
    "portcullis/portcullis.d.ts" => "../../../../sdk/js/portcullis.d.ts",
    "portcullis/testing.js" => "../../../../sdk/js/testing.js",
    "portcullis/testing.d.ts" => "../../../../sdk/js/testing.d.ts",
    "portcullis/types/interfaces/portcullis-policy-types.d.ts" =>
        "../../../../sdk/js/types/interfaces/portcullis-policy-types.d.ts",
    "portcullis/types/interfaces/portcullis-policy-host.d.ts" =>
        "../../../../sdk/js/types/interfaces/portcullis-policy-host.d.ts",
    "wit/policy.wit" => "../../../../sdk/wit/policy.wit",
};

const PYTHON: &[File] = files! {
    "app.py" => "../../templates/python/app.py",
    "test_app.py" => "../../templates/python/test_app.py",
    "conftest.py" => "../../templates/python/conftest.py",
    "pyproject.toml" => "../../templates/python/pyproject.toml",
    ".gitignore" => "../../templates/python/gitignore",
    "portcullis/__init__.py" => "../../../../sdk/python/portcullis/__init__.py",
    "portcullis/testing.py" => "../../../../sdk/python/portcullis/testing.py",
    "wit/policy.wit" => "../../../../sdk/wit/policy.wit",
};

/// The JavaScript SDK's package: its tool pins are the ones a TypeScript project gets.
const SDK_PACKAGE: &str = include_str!("../../../../sdk/js/package.json");
/// Its lock: every tool's dependencies pinned, as the SDK was tested with them.
const SDK_LOCK: &str = include_str!("../../../../sdk/js/package-lock.json");
/// The workspace manifest: the Rust SDK's dependency versions come from it.
const WORKSPACE: &str = include_str!("../../../../Cargo.toml");
/// The toolchain policies are built with here.
const TOOLCHAIN: &str = include_str!("../../../../rust-toolchain.toml");

/// Why a project could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot name a package, a crate and a file.
    #[error(
        "`{0}` is not a usable policy name: lower-case letters, digits and `-`, starting with a letter, at most 64"
    )]
    BadName(String),
    /// The directory exists and is not empty.
    #[error("`{0}` already exists and is not empty; nothing was written")]
    Exists(PathBuf),
    /// Writing a file.
    #[error("writing `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Checks a policy name: it names the directory, the crate or package, and `NAME.wasm`.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ScaffoldError::BadName(name.to_owned()))
    }
}

/// The files of a new `lang` project named `name`: (path relative to it, contents).
pub fn files(name: &str, lang: Lang) -> Vec<(String, String)> {
    let (own, sdk_dir, source, unit_file, unit, setup): (&[File], _, _, _, _, _) = match lang {
        Lang::Rust => (
            RUST,
            "portcullis-sdk/",
            "src/lib.rs",
            "src/lib.rs, `mod tests`",
            "cargo test",
            "Rust with rustup (rust-toolchain.toml adds the wasm32 target on first use).",
        ),
        Lang::Ts => (
            TS,
            "portcullis/",
            "app.ts",
            "app.test.ts",
            "npm test",
            "`npm install` (node 20 or later; the tools' versions are pinned in package.json).",
        ),
        Lang::Python => (
            PYTHON,
            "portcullis/",
            "app.py",
            "test_app.py",
            "python3 -m pytest",
            "`pip install componentize-py==0.25.1 pytest` (Python 3.11 or later).",
        ),
    };
    let replace = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{language}}", lang.name())
            .replace("{{sdk_dir}}", sdk_dir)
            .replace("{{source}}", source)
            .replace("{{unit_file}}", unit_file)
            .replace("{{unit}}", unit)
            .replace("{{setup}}", setup)
            .replace("{{contract}}", CONTRACT_VERSION)
            .replace("{{js_tools}}", &js_tools())
    };
    let mut out: Vec<(String, String)> = COMMON
        .iter()
        .chain(own)
        .map(|(path, text)| {
            // The SDK's own sources are copied as they are.
            let vendored = path.starts_with(sdk_dir) || path.starts_with("wit/");
            let text = if vendored {
                (*text).to_owned()
            } else {
                replace(text)
            };
            (path.replace("{{name}}", name), text)
        })
        .collect();
    match lang {
        Lang::Rust => {
            out.push(("portcullis-sdk/Cargo.toml".into(), rust_sdk_manifest()));
            out.push(("rust-toolchain.toml".into(), rust_toolchain()));
        }
        Lang::Ts => {
            out.push(("portcullis/package.json".into(), js_sdk_package()));
            if let Some(package) = out.iter().find(|(p, _)| p == "package.json") {
                let lock = js_lock(&package.1);
                out.push(("package-lock.json".into(), lock));
            }
        }
        Lang::Python => {}
    }
    out
}

/// Writes a new project into `dir` (which must not exist or be empty).
pub fn write(dir: &Path, name: &str, lang: Lang) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_name(name)?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ScaffoldError::Io { path, source }
    };
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(ScaffoldError::Exists(dir.to_owned()));
    }
    let mut written = Vec::new();
    for (relative, text) in files(name, lang) {
        let path = dir.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
        written.push(PathBuf::from(relative));
    }
    Ok(written)
}

/// The TypeScript project's tool pins, as `package.json` lines: the SDK's own.
fn js_tools() -> String {
    let package: serde_json::Value = serde_json::from_str(SDK_PACKAGE).unwrap_or_default();
    package
        .get("devDependencies")
        .and_then(|tools| tools.as_object())
        .map(|tools| {
            tools
                .iter()
                .map(|(name, version)| format!("{name:?}: {version}"))
                .collect::<Vec<_>>()
                .join(",\n    ")
        })
        .unwrap_or_default()
}

/// The vendored JavaScript SDK's `package.json`: the SDK's, without its tools.
fn js_sdk_package() -> String {
    let mut package: serde_json::Value = serde_json::from_str(SDK_PACKAGE).unwrap_or_default();
    if let Some(fields) = package.as_object_mut() {
        for field in ["devDependencies", "overrides", "scripts"] {
            fields.remove(field);
        }
    }
    let mut text = serde_json::to_string_pretty(&package).unwrap_or_default();
    text.push('\n');
    text
}

/// The project's `package-lock.json`: the SDK's, its root the project's `package`. `npm
/// install` adds the SDK itself (`file:./portcullis`) and keeps every other pin.
fn js_lock(package: &str) -> String {
    let (Ok(serde_json::Value::Object(mut lock)), Ok(serde_json::Value::Object(package))) = (
        serde_json::from_str(SDK_LOCK),
        serde_json::from_str(package),
    ) else {
        return String::new();
    };
    let mut root = serde_json::Map::new();
    for field in ["name", "version", "devDependencies"] {
        if let Some(value) = package.get(field) {
            root.insert(field.to_owned(), value.clone());
        }
    }
    for field in ["name", "version"] {
        if let Some(value) = package.get(field) {
            lock.insert(field.to_owned(), value.clone());
        }
    }
    if let Some(serde_json::Value::Object(packages)) = lock.get_mut("packages") {
        packages.insert(String::new(), serde_json::Value::Object(root));
    }
    let mut text = serde_json::to_string_pretty(&lock).unwrap_or_default();
    text.push('\n');
    text
}

/// The vendored Rust SDK's `Cargo.toml`, its dependency lines taken from the workspace's.
fn rust_sdk_manifest() -> String {
    let dependency = |name: &str| {
        WORKSPACE
            .lines()
            .find(|line| line.starts_with(&format!("{name} =")))
            .unwrap_or_default()
            .to_owned()
    };
    format!(
        "[package]\nname = \"portcullis-sdk\"\nversion = \"{}\"\nedition = \"2024\"\npublish = false\n\
         description = \"Portcullis policies in Rust (copied by `portcullis new`: contract {CONTRACT_VERSION})\"\n\n\
         [dependencies]\n{}\n{}\n{}\n\n\
         [features]\ndefault = [\"arena\"]\narena = []\n\n\
         [lints.clippy]\nallow_attributes = \"deny\"\n",
        env!("CARGO_PKG_VERSION"),
        dependency("wit-bindgen"),
        dependency("serde"),
        dependency("serde_json"),
    )
}

/// The toolchain the project builds with: this workspace's channel, with the wasm32 target.
fn rust_toolchain() -> String {
    let channel = TOOLCHAIN
        .lines()
        .find(|line| line.starts_with("channel"))
        .unwrap_or("channel = \"stable\"");
    format!("[toolchain]\n{channel}\ntargets = [\"wasm32-unknown-unknown\"]\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_name_a_crate_package_and_file_are_refused() {
        for good in ["block-eve", "a", "rule2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Block",
            "2fa",
            "a_b",
            "a-",
            "../x",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_project_has_the_rule_tests_events_manifest_and_readme() {
        for lang in [Lang::Rust, Lang::Ts, Lang::Python] {
            let files = files("block-eve", lang);
            let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
            for path in [
                "README.md",
                "manifest.json",
                "block-eve.tests.json",
                "events/pre-auth.json",
                "events/token.json",
            ] {
                assert!(paths.contains(&path), "{lang:?}: {path}");
            }
            for (path, text) in &files {
                assert!(
                    !text.contains("{{"),
                    "{lang:?}: {path} has a placeholder left"
                );
                if path.ends_with(".json") {
                    serde_json::from_str::<serde_json::Value>(text)
                        .unwrap_or_else(|e| panic!("{lang:?}: {path}: {e}"));
                }
            }
        }
    }

    #[test]
    fn the_vendored_rust_sdk_uses_the_workspaces_dependencies() {
        let manifest = rust_sdk_manifest();
        for name in ["wit-bindgen =", "serde =", "serde_json ="] {
            assert!(
                manifest
                    .lines()
                    .any(|l| l.starts_with(name) && l.contains('"')),
                "{name}: {manifest}"
            );
        }
        assert!(rust_toolchain().contains("channel = \""));
    }

    #[test]
    fn a_typescript_project_pins_the_sdks_tools() {
        let package = files("block-eve", Lang::Ts)
            .into_iter()
            .find(|(p, _)| p == "package.json")
            .unwrap()
            .1;
        let package: serde_json::Value = serde_json::from_str(&package).unwrap();
        let tools = package["devDependencies"].as_object().unwrap();
        assert_eq!(tools["@portcullis/sdk"], "file:./portcullis");
        for tool in [
            "@bytecodealliance/jco",
            "@bytecodealliance/componentize-js",
            "rolldown",
        ] {
            assert!(
                tools[tool].as_str().unwrap().starts_with(char::is_numeric),
                "{tool}"
            );
        }
    }
}
