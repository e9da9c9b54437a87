//! Policy projects, as `portcullis new` makes them and `build` and `test` find them: which
//! language a directory holds, where its component goes, whether it is stale, and building
//! it ([`build`]) into a component checked against the contract, and keeping it compiled
//! between commands ([`cache`]).

pub mod build;
pub mod cache;
pub mod scaffold;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The languages a project can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the `portcullis-sdk` crate.
    Rust,
    /// TypeScript, with the `@portcullis/sdk` package (componentize-js).
    #[value(alias = "typescript", alias = "js", alias = "javascript")]
    Ts,
    /// Python, with the `portcullis` package (componentize-py).
    #[value(alias = "py")]
    Python,
}

impl Lang {
    /// The language's name in prose.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Ts => "TypeScript",
            Lang::Python => "Python",
        }
    }

    /// The file whose presence marks a project of this language.
    fn marker(self) -> &'static str {
        match self {
            Lang::Rust => "Cargo.toml",
            Lang::Ts => "package.json",
            Lang::Python => "app.py",
        }
    }
}

/// Why a directory is not a policy project.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// None of the markers is there.
    #[error(
        "`{0}` is not a policy project: it has no Cargo.toml (Rust), package.json (TypeScript) or app.py (Python); `portcullis new NAME --lang rust|ts|python` makes one"
    )]
    NotAProject(PathBuf),
    /// Its name cannot be a file name.
    #[error("`{0}` has no usable directory name")]
    NoName(PathBuf),
}

/// A policy project: a directory with a language and a name.
#[derive(Debug, Clone)]
pub struct Project {
    /// Its directory.
    pub dir: PathBuf,
    /// Its name: the directory's, which names the component (`NAME.wasm`).
    pub name: String,
    /// Its language.
    pub lang: Lang,
}

impl Project {
    /// The project in `dir`.
    pub fn find(dir: &Path) -> Result<Project, ProjectError> {
        let lang = [Lang::Rust, Lang::Ts, Lang::Python]
            .into_iter()
            .find(|lang| dir.join(lang.marker()).is_file())
            .ok_or_else(|| ProjectError::NotAProject(dir.to_owned()))?;
        let real = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
        let name = real
            .file_name()
            .and_then(|name| name.to_str())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| ProjectError::NoName(dir.to_owned()))?
            .to_owned();
        Ok(Project {
            dir: dir.to_owned(),
            name,
            lang,
        })
    }

    /// The component `build` writes: `NAME.wasm` in the project.
    pub fn module(&self) -> PathBuf {
        self.dir.join(format!("{}.wasm", self.name))
    }

    /// The test cases beside it: `NAME.tests.json`.
    pub fn tests(&self) -> PathBuf {
        self.dir.join(format!("{}.tests.json", self.name))
    }

    /// Whether the component is missing or older than a source file.
    pub fn stale(&self) -> bool {
        let Some(built) = modified(&self.module()) else {
            return true;
        };
        newer_source(&self.dir, built)
    }
}

/// Directories whose files are never sources.
const NOT_SOURCES: &[&str] = &[
    "target",
    "node_modules",
    "build",
    "store",
    "events",
    "__pycache__",
    ".git",
];

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether a source under `dir` changed after `built` (test cases, events, manifests and
/// components are not sources).
fn newer_source(dir: &Path, built: SystemTime) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            return !NOT_SOURCES.contains(&name.as_str()) && newer_source(&path, built);
        }
        let source = [".rs", ".toml", ".ts", ".js", ".py", ".wit", "package.json"]
            .iter()
            .any(|ext| name.ends_with(ext));
        source && modified(&path).is_some_and(|m| m > built)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_is_found_by_its_marker_and_named_by_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("block-eve");
        std::fs::create_dir(&root).unwrap();
        assert!(matches!(
            Project::find(&root),
            Err(ProjectError::NotAProject(_))
        ));
        std::fs::write(root.join("app.py"), "").unwrap();
        let project = Project::find(&root).unwrap();
        assert_eq!(
            (project.lang, project.name.as_str()),
            (Lang::Python, "block-eve")
        );
        assert_eq!(project.module(), root.join("block-eve.wasm"));
        assert!(project.stale());
        std::fs::write(project.module(), b"").unwrap();
        assert!(!project.stale());
        // A later edit makes it stale again; a test case file does not.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(project.tests(), "[]").unwrap();
        assert!(!project.stale());
        std::fs::write(root.join("app.py"), "# edited").unwrap();
        assert!(project.stale());
    }
}
