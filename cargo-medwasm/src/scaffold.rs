//! Scaffolding a detector project from a template embedded in the binary (see
//! `build.rs` and [`crate::templates`]): what `cargo medwasm new` does.
//!
//! The project is rendered into a hidden staging folder beside the target and renamed
//! into place only once everything (rendering, and the model import of templates that
//! ship a model) has succeeded, so a failure leaves nothing half-written behind.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use handlebars::Handlebars;
use serde_json::{Map, Value};

use crate::importer::{ImportOptions, import_model};
use crate::templates::Template;
use crate::ui::Ui;

/// File of a template holding extra template data; never copied into a project.
const TEMPLATE_DATA: &str = "template.json";
/// Suffix of files rendered with handlebars; it is dropped from the written name.
const HBS: &str = ".hbs";
/// The SDK of the repository this binary was built from, used when it still exists.
const REPO_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/medwasm");
/// Version of this CLI, and of the SDK it goes with on crates.io.
const CLI_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where the generated project gets the `medwasm` SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A local checkout: an absolute path, so the project can move.
    Path(PathBuf),
    /// crates.io, at this version.
    Registry(String),
}

impl SdkSource {
    /// `--sdk-path` if given; else the SDK of the repository this binary was built
    /// from, if it is still there; else crates.io at the CLI's version.
    pub fn resolve(sdk_path: Option<&Path>) -> Result<SdkSource> {
        Self::resolve_with(sdk_path, Path::new(REPO_SDK))
    }

    fn resolve_with(sdk_path: Option<&Path>, repo_sdk: &Path) -> Result<SdkSource> {
        if let Some(path) = sdk_path {
            let canonical = std::fs::canonicalize(path).with_context(|| {
                format!("`--sdk-path {}` does not exist; pass the folder of the `medwasm` SDK (`sdk/medwasm` in a cargo-medwasm checkout)", path.display())
            })?;
            let manifest = canonical.join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest).unwrap_or_default();
            if !declares_package(&text, "medwasm") {
                bail!(
                    "`--sdk-path {}` does not hold the `medwasm` package (no `name = \"medwasm\"` in `{}`); pass the folder of the SDK, `sdk/medwasm` in a cargo-medwasm checkout",
                    path.display(),
                    manifest.display()
                );
            }
            return Ok(SdkSource::Path(strip_verbatim(canonical)));
        }
        match std::fs::canonicalize(repo_sdk) {
            Ok(canonical) if canonical.join("Cargo.toml").is_file() => {
                Ok(SdkSource::Path(strip_verbatim(canonical)))
            }
            _ => Ok(SdkSource::Registry(CLI_VERSION.to_string())),
        }
    }

    /// `path = "…"` or `version = "…"`: where cargo finds the SDK.
    fn location(&self) -> Result<String> {
        Ok(match self {
            SdkSource::Path(path) => {
                let path = path.to_str().with_context(|| {
                    format!("the SDK path `{}` is not valid UTF-8, so Cargo.toml cannot name it; pass `--sdk-path` with a UTF-8 path", path.display())
                })?;
                format!("path = {}", toml_string(path))
            }
            SdkSource::Registry(version) => format!("version = {}", toml_string(version)),
        })
    }

    /// The TOML value of the `medwasm` dependency: no `std`, a trapping panic handler.
    pub fn dependency(&self) -> Result<String> {
        Ok(format!(
            "{{ {}, default-features = false, features = [\"panic-handler\"] }}",
            self.location()?
        ))
    }

    /// The TOML value of the `medwasm` dev-dependency: `std` for native tests.
    pub fn dev_dependency(&self) -> Result<String> {
        Ok(format!(
            "{{ {}, default-features = false, features = [\"std\"] }}",
            self.location()?
        ))
    }
}

/// Whether a Cargo.toml's text has a `name = "<name>"` line (its `[package]` name).
fn declares_package(cargo_toml: &str, name: &str) -> bool {
    cargo_toml.lines().any(|line| {
        line.split_once('=').is_some_and(|(key, value)| {
            key.trim() == "name"
                && value
                    .split('#')
                    .next()
                    .is_some_and(|v| v.trim() == format!("\"{name}\""))
        })
    })
}

/// Drops the `\\?\` prefix Windows' `canonicalize` adds to local paths; cargo and
/// most tools read the plain form better. UNC paths keep it.
fn strip_verbatim(path: PathBuf) -> PathBuf {
    match path.to_str() {
        Some(s) if s.starts_with(r"\\?\") && !s.starts_with(r"\\?\UNC\") => PathBuf::from(&s[4..]),
        _ => path,
    }
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Names a package cannot take, by line: crates of the sysroot and the SDK, folders
/// of cargo's target directory, Rust keywords (strict and reserved, every edition).
const RESERVED: &str = "
    alloc core medwasm proc_macro std test
    build deps examples incremental
    Self abstract as async await become box break const continue crate do dyn else enum extern
    false final fn for gen if impl in let loop macro match mod move mut override priv pub ref
    return self static struct super trait true try type typeof unsafe unsized use virtual where
    while yield
";

/// Device names Windows will not create as folders, in any letter case.
const WINDOWS_DEVICES: &str = "
    aux con nul prn com1 com2 com3 com4 com5 com6 com7 com8 com9
    lpt1 lpt2 lpt3 lpt4 lpt5 lpt6 lpt7 lpt8 lpt9
";

const NAME_RULE: &str = "a package name starts with an ASCII letter and goes on with ASCII letters, digits, `-` or `_` (e.g. `ecg-detector`), and is not a Rust keyword, `test`, `core`, `std`, `alloc` or `medwasm`";

/// Checks that `name` can be a cargo package, a crate and a folder.
pub fn validate_name(name: &str) -> Result<()> {
    let Some(first) = name.chars().next() else {
        bail!("the project name is empty; {NAME_RULE}");
    };
    if !first.is_ascii_alphabetic() {
        bail!("invalid project name `{name}`: it starts with `{first}`; {NAME_RULE}");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        bail!(
            "invalid project name `{name}`: it contains `{}`; {NAME_RULE}",
            bad.escape_default()
        );
    }
    let crate_name = name.replace('-', "_");
    let reserved = RESERVED.split_whitespace().any(|r| r == crate_name)
        || WINDOWS_DEVICES
            .split_whitespace()
            .any(|d| d.eq_ignore_ascii_case(name));
    if reserved {
        bail!(
            "invalid project name `{name}`: it is reserved (a Rust keyword, a standard crate, or a name cargo or Windows uses); {NAME_RULE}; try `{name}-detector`"
        );
    }
    Ok(())
}

/// Type names a generated `src/lib.rs` must not redefine: the prelude's, and those the
/// templates import. A detector named after one gets a `Detector` suffix.
const TAKEN_TYPE_NAMES: &str = "
    AlignedBuf AsMut AsRef Box Clone Copy Default Drop Eq Err Error Extend Finding Fn FnMut
    FnOnce From Into IntoIterator Io Iterator Model None Ok Option Ord PartialEq PartialOrd
    Result Self Send Sized Some String Sync ToOwned ToString TryFrom TryInto Unpin Vec
";

/// The detector type's name: `ecg-beat_v2` → `EcgBeatV2`.
pub fn struct_name(name: &str) -> String {
    let mut out: String = name
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    if TAKEN_TYPE_NAMES.split_whitespace().any(|t| t == out) {
        out.push_str("Detector");
    }
    out
}

/// Creates project `name` in `parent` from `template`, importing its model if it
/// ships one. Returns the project's path. Refuses an existing path.
pub fn create(
    parent: &Path,
    name: &str,
    template: Template,
    sdk: &SdkSource,
    ui: &Ui,
) -> Result<PathBuf> {
    validate_name(name)?;
    refuse_existing(parent, name)?;
    ui.status(
        "Creating",
        format!("`{name}` from the `{}` template", template.dir_name()),
    );
    stage(parent, name, |root| {
        render(template, root, name, sdk)?;
        if let Some(model) = template.model() {
            ui.status("Importing", model);
            // The staging path is an implementation detail: import's own progress,
            // full of it, is shown only under `-v`.
            let quiet = Ui::new(true, false);
            let import_ui = if ui.verbose() { ui } else { &quiet };
            import_model(root, &root.join(model), &ImportOptions::default(), import_ui).with_context(|| {
                format!(
                    "cannot import `{model}` of the `{}` template; this is a bug in cargo-medwasm, please report it with this message",
                    template.dir_name()
                )
            })?;
        }
        Ok(())
    })
}

/// Runs `fill` on a fresh hidden folder beside `parent/name`, then renames it to
/// `parent/name`. On any error the folder is removed and nothing else was touched.
fn stage(parent: &Path, name: &str, fill: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    refuse_existing(parent, name)?;
    let staging = Staging::create(parent, name)?;
    fill(&staging.path)?;
    // Checked again: something may have appeared there while the project was made.
    refuse_existing(parent, name)?;
    let dest = parent.join(name);
    staging.finish(&dest)?;
    Ok(dest)
}

/// Fails when `parent/name` exists, suggesting the first free `name-<n>`.
fn refuse_existing(parent: &Path, name: &str) -> Result<()> {
    // `symlink_metadata`: a dangling symlink is in the way too.
    let taken = |name: &str| parent.join(name).symlink_metadata().is_ok();
    if taken(name) {
        let mut n = 2;
        while taken(&format!("{name}-{n}")) {
            n += 1;
        }
        let free = format!("{name}-{n}");
        bail!(
            "`{}` already exists; choose another name (e.g. `cargo medwasm new {free}`) or move it away: `new` never touches existing files",
            parent.join(name).display()
        );
    }
    Ok(())
}

/// A hidden folder a project is built in, removed on drop unless finished.
#[derive(Debug)]
struct Staging {
    path: PathBuf,
    done: bool,
}

impl Staging {
    fn create(parent: &Path, name: &str) -> Result<Staging> {
        let pid = std::process::id();
        for n in 0..100 {
            let path = parent.join(format!(".{name}.medwasm-new-{pid}-{n}"));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Staging { path, done: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a folder in `{}`", parent.display())
                    });
                }
            }
        }
        bail!(
            "cannot create a staging folder in `{}`: `.{name}.medwasm-new-*` folders are in the way; remove them (they are left-overs of an interrupted `cargo medwasm new`)",
            parent.display()
        )
    }

    fn finish(mut self, dest: &Path) -> Result<()> {
        std::fs::rename(&self.path, dest)
            .with_context(|| format!("cannot move the new project into `{}`", dest.display()))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: the folder is ours, hidden, and named after the process.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The handlebars data of a template: `template.json`'s keys plus the project's.
fn template_data(template: Template, name: &str, sdk: &SdkSource) -> Result<Map<String, Value>> {
    let files = template.files()?;
    let bug =
        |what: String| anyhow::anyhow!("{what}; this is a bug in cargo-medwasm, please report it");
    let mut data = match files.iter().find(|(path, _)| *path == TEMPLATE_DATA) {
        Some((_, bytes)) => match serde_json::from_slice(bytes) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(bug(format!(
                    "`{TEMPLATE_DATA}` of template `{}` is not a JSON object",
                    template.dir_name()
                )));
            }
            Err(e) => {
                return Err(bug(format!(
                    "`{TEMPLATE_DATA}` of template `{}` is not valid JSON ({e})",
                    template.dir_name()
                )));
            }
        },
        None => Map::new(),
    };
    let own = [
        ("name", name.to_string()),
        ("crate_name", name.replace('-', "_")),
        ("struct_name", struct_name(name)),
        ("sdk_dependency", sdk.dependency()?),
        ("sdk_dev_dependency", sdk.dev_dependency()?),
        ("cli_version", CLI_VERSION.to_string()),
    ];
    for (key, value) in own {
        if data.insert(key.to_string(), Value::String(value)).is_some() {
            return Err(bug(format!(
                "`{TEMPLATE_DATA}` of template `{}` redefines `{key}`",
                template.dir_name()
            )));
        }
    }
    Ok(data)
}

/// Writes `template`'s files into the existing folder `root`: `.hbs` files rendered
/// (and renamed without the suffix), the rest copied byte for byte.
pub fn render(template: Template, root: &Path, name: &str, sdk: &SdkSource) -> Result<()> {
    let data = template_data(template, name, sdk)?;
    let mut hbs = Handlebars::new();
    hbs.set_strict_mode(true); // a misspelled variable is an error, not an empty string
    hbs.register_escape_fn(handlebars::no_escape); // TOML and Rust, not HTML
    for (rel, bytes) in template.files()? {
        if *rel == TEMPLATE_DATA {
            continue;
        }
        let (out_rel, contents) = match rel.strip_suffix(HBS) {
            Some(out_rel) => {
                let rendered = std::str::from_utf8(bytes)
                    .map_err(anyhow::Error::from)
                    .and_then(|text| Ok(hbs.render_template(text, &data)?))
                    .with_context(|| {
                        format!(
                            "cannot render `{rel}` of template `{}`; this is a bug in cargo-medwasm, please report it",
                            template.dir_name()
                        )
                    })?;
                (out_rel, std::borrow::Cow::Owned(rendered.into_bytes()))
            }
            None => (*rel, std::borrow::Cow::Borrowed(*bytes)),
        };
        let path = root.join(out_rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(())
}

/// What to type next, printed on stdout once the project exists.
pub fn next_steps(name: &str, template: Template) -> String {
    let mut out = format!(
        "created `{name}` from the `{}` template",
        template.dir_name()
    );
    let mut steps = vec![format!("cd {name}")];
    if template.model().is_none() {
        out.push_str("; it builds once it holds a model");
        steps.push("cargo medwasm import <model.onnx>".to_string());
    }
    steps.push("cargo medwasm build --target wasmtime --release".to_string());
    steps.push("cargo medwasm bench --target wasmtime".to_string());
    out.push_str("\n\nnext steps:\n");
    for step in steps {
        out.push_str("    ");
        out.push_str(&step);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {

    use super::*;

    fn repo_sdk() -> SdkSource {
        SdkSource::resolve_with(None, Path::new(REPO_SDK)).unwrap()
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
    }

    /// Every file under `root`, relative, sorted, with '/'.
    fn tree(root: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap();
                    out.push(
                        rel.components()
                            .map(|c| c.as_os_str().to_str().unwrap())
                            .collect::<Vec<_>>()
                            .join("/"),
                    );
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    #[test]
    fn names() {
        for ok in [
            "demo",
            "vitals-anomaly",
            "ecg_v2",
            "A1",
            "testing",
            "std-detector",
            "self-",
        ] {
            validate_name(ok).unwrap_or_else(|e| panic!("`{ok}` rejected: {e}"));
        }
        let err = |name: &str| {
            validate_name(name)
                .map(|()| format!("`{name}` accepted"))
                .unwrap_or_else(|e| e.to_string())
        };
        assert!(err("").contains("the project name is empty"));
        assert!(err("1demo").contains("it starts with `1`"));
        assert!(err("-demo").contains("it starts with `-`"));
        assert!(err("_demo").contains("it starts with `_`"));
        assert!(err("my demo").contains("it contains ` `"));
        assert!(err("a/b").contains("it contains `/`"));
        assert!(err("a.b").contains("it contains `.`"));
        assert!(err("vitalé").contains("it contains `\\u{e9}`"));
        for reserved in [
            "test",
            "core",
            "std",
            "alloc",
            "medwasm",
            "fn",
            "self",
            "Self",
            "type",
            "async",
            "gen",
            "build",
            "proc-macro",
            "NUL",
        ] {
            let msg = err(reserved);
            assert!(msg.contains("it is reserved"), "{reserved}: {msg}");
            assert!(msg.contains(&format!("try `{reserved}-detector`")), "{msg}");
        }
        // Every message states the whole rule.
        assert!(err("1demo").contains(NAME_RULE));
    }

    #[test]
    fn struct_names() {
        assert_eq!(struct_name("demo"), "Demo");
        assert_eq!(struct_name("vitals-anomaly"), "VitalsAnomaly");
        assert_eq!(struct_name("ecg_beat-v2"), "EcgBeatV2");
        assert_eq!(struct_name("a--b_"), "AB");
        assert_eq!(struct_name("myECG"), "MyECG");
        assert_eq!(struct_name("result"), "ResultDetector");
        assert_eq!(struct_name("self-"), "SelfDetector");
        assert_eq!(struct_name("finding"), "FindingDetector");
    }

    #[test]
    fn sdk_dependency_choice() {
        let repo = std::fs::canonicalize(REPO_SDK).unwrap();
        // In this repository the default is the SDK beside the CLI, by absolute path.
        assert_eq!(
            SdkSource::resolve(None).unwrap(),
            SdkSource::Path(repo.clone())
        );
        // Elsewhere (an installed binary), crates.io at the CLI's version.
        let gone = tempfile::tempdir().unwrap().path().join("sdk/medwasm");
        let registry = SdkSource::resolve_with(None, &gone).unwrap();
        assert_eq!(registry, SdkSource::Registry(CLI_VERSION.to_string()));
        assert_eq!(
            registry.dependency().unwrap(),
            format!(
                "{{ version = \"{CLI_VERSION}\", default-features = false, features = [\"panic-handler\"] }}"
            )
        );
        assert_eq!(
            registry.dev_dependency().unwrap(),
            format!(
                "{{ version = \"{CLI_VERSION}\", default-features = false, features = [\"std\"] }}"
            )
        );

        // `--sdk-path` wins, relative paths become absolute.
        let relative = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/./medwasm");
        let given = SdkSource::resolve_with(Some(&relative), &gone).unwrap();
        assert_eq!(given, SdkSource::Path(repo.clone()));
        assert_eq!(
            given.dependency().unwrap(),
            format!(
                "{{ path = {}, default-features = false, features = [\"panic-handler\"] }}",
                toml_string(repo.to_str().unwrap())
            )
        );

        let missing = SdkSource::resolve_with(Some(&gone), Path::new(REPO_SDK))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("does not exist"), "{missing}");
        let workspace_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let wrong = SdkSource::resolve_with(Some(&workspace_root), Path::new(REPO_SDK))
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("does not hold the `medwasm` package"),
            "{wrong}"
        );
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("/a b/c"), "\"/a b/c\"");
        assert_eq!(toml_string(r#"C:\x"y"#), r#""C:\\x\"y""#);
        assert_eq!(toml_string("a\tb"), "\"a\\u0009b\"");
        assert_eq!(
            strip_verbatim(PathBuf::from(r"\\?\C:\sdk")),
            PathBuf::from(r"C:\sdk")
        );
        assert_eq!(
            strip_verbatim(PathBuf::from(r"\\?\UNC\host\sdk")),
            PathBuf::from(r"\\?\UNC\host\sdk")
        );
        assert!(declares_package(
            "[package]\nname = \"medwasm\" # the SDK\n",
            "medwasm"
        ));
        assert!(!declares_package(
            "[workspace]\nmembers = [\"medwasm\"]\n",
            "medwasm"
        ));
    }

    #[test]
    fn refuses_an_existing_path_and_touches_nothing() {
        let parent = tempfile::tempdir().unwrap();
        let existing = parent.path().join("demo");
        std::fs::create_dir(&existing).unwrap();
        std::fs::write(existing.join("keep.txt"), "mine").unwrap();
        let err = create(
            parent.path(),
            "demo",
            Template::Blank,
            &repo_sdk(),
            &Ui::silent(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("already exists"), "{err}");
        assert!(err.contains("cargo medwasm new demo-2"), "{err}");
        assert_eq!(tree(parent.path()), ["demo/keep.txt"]);
        std::fs::create_dir(parent.path().join("demo-2")).unwrap();
        let err = create(
            parent.path(),
            "demo",
            Template::Blank,
            &repo_sdk(),
            &Ui::silent(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cargo medwasm new demo-3"), "{err}");
        std::fs::remove_dir(parent.path().join("demo-2")).unwrap();
        assert_eq!(read(&existing.join("keep.txt")), "mine");

        // A file or a dangling symlink is in the way just the same.
        std::fs::write(parent.path().join("file"), "").unwrap();
        assert!(
            create(
                parent.path(),
                "file",
                Template::Blank,
                &repo_sdk(),
                &Ui::silent()
            )
            .is_err()
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(parent.path().join("nowhere"), parent.path().join("link"))
                .unwrap();
            assert!(
                create(
                    parent.path(),
                    "link",
                    Template::Blank,
                    &repo_sdk(),
                    &Ui::silent()
                )
                .is_err()
            );
        }
    }

    #[test]
    fn a_failure_leaves_nothing_behind() {
        let parent = tempfile::tempdir().unwrap();
        let result = stage(parent.path(), "demo", |root| {
            render(Template::VitalsAnomaly, root, "demo", &repo_sdk())?;
            bail!("the import failed")
        });
        assert_eq!(result.unwrap_err().to_string(), "the import failed");
        assert_eq!(tree(parent.path()), Vec::<String>::new());
        assert_eq!(
            std::fs::read_dir(parent.path()).unwrap().count(),
            0,
            "no staging folder left"
        );
    }

    #[test]
    fn renders_vitals_anomaly() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = repo_sdk();
        render(Template::VitalsAnomaly, dir.path(), "my-vitals", &sdk).unwrap();
        assert_eq!(
            tree(dir.path()),
            [
                ".gitignore",
                "Cargo.toml",
                "README.md",
                "model/vitals_ae.onnx",
                "src/lib.rs",
                "vectors/expected.1.npy",
                "vectors/expected.npy",
                "vectors/inputs.npy",
                "web/demo.js",
                "web/index.html",
            ]
        );
        let repo_templates =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/vitals-anomaly");
        for copied in [
            "model/vitals_ae.onnx",
            "vectors/inputs.npy",
            "vectors/expected.1.npy",
        ] {
            assert_eq!(
                std::fs::read(dir.path().join(copied)).unwrap(),
                std::fs::read(repo_templates.join(copied)).unwrap(),
                "{copied} is copied byte for byte"
            );
        }

        let cargo_toml = read(&dir.path().join("Cargo.toml"));
        assert!(cargo_toml.contains("name = \"my-vitals\""));
        assert!(cargo_toml.contains(&format!("medwasm = {}", sdk.dependency().unwrap())));
        assert!(cargo_toml.contains(&format!("medwasm = {}", sdk.dev_dependency().unwrap())));
        let lib = read(&dir.path().join("src/lib.rs"));
        assert!(lib.contains("pub struct MyVitals {"));
        assert!(
            lib.contains("pub const THRESHOLD: f32 = 0.155759;"),
            "threshold from template.json"
        );
        assert!(lib.contains("pub const WINDOW: usize = 32;"));
        assert!(lib.contains("medwasm::export_detector!(MyVitals = MyVitals::new());"));
        assert!(
            !lib.contains("&quot;") && !lib.contains("&#x27;"),
            "no HTML escaping"
        );
        let readme = read(&dir.path().join("README.md"));
        assert!(readme.contains("Demo model — not a clinical device"));
        assert!(readme.contains("`score > 0.155759`"));

        // Cargo reads the manifest: the crate types, the metadata table, the deps.
        let meta = cargo_metadata::MetadataCommand::new()
            .manifest_path(dir.path().join("Cargo.toml"))
            .no_deps()
            .exec()
            .unwrap();
        let package = meta.root_package().unwrap();
        assert_eq!(package.name.as_str(), "my-vitals");
        let kinds: Vec<String> = package.targets[0]
            .kind
            .iter()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(kinds, ["cdylib", "rlib"]);
        assert_eq!(package.metadata["medwasm"]["runs"], 1000);
        assert_eq!(package.metadata["medwasm"]["abs-tolerance"], 1e-4);
        let medwasm: Vec<_> = package
            .dependencies
            .iter()
            .filter(|d| d.name == "medwasm")
            .collect();
        assert_eq!(medwasm.len(), 2, "a dependency and a dev-dependency");
        assert!(medwasm.iter().all(|d| !d.uses_default_features));
        assert!(medwasm.iter().any(|d| d.features == ["panic-handler"]));
        assert!(medwasm.iter().any(|d| d.features == ["std"]));
        assert_eq!(
            meta.workspace_root.as_std_path(),
            std::fs::canonicalize(dir.path()).unwrap(),
            "its own workspace"
        );
    }

    #[test]
    fn renders_blank() {
        let dir = tempfile::tempdir().unwrap();
        render(Template::Blank, dir.path(), "ecg", &repo_sdk()).unwrap();
        assert_eq!(
            tree(dir.path()),
            [
                ".gitignore",
                "Cargo.toml",
                "README.md",
                "src/lib.rs",
                "vectors/.gitkeep",
                "web/demo.js",
                "web/index.html",
            ]
        );
        assert_eq!(read(&dir.path().join("vectors/.gitkeep")), "");
        let lib = read(&dir.path().join("src/lib.rs"));
        assert!(lib.contains("pub struct Ecg;"));
        assert!(lib.contains("mod model;"));
        assert!(read(&dir.path().join("README.md")).contains("cargo medwasm import"));
    }

    #[test]
    fn creates_a_blank_project_in_place() {
        let parent = tempfile::tempdir().unwrap();
        let root = create(
            parent.path(),
            "ecg",
            Template::Blank,
            &repo_sdk(),
            &Ui::silent(),
        )
        .unwrap();
        assert_eq!(root, parent.path().join("ecg"));
        let entries: Vec<_> = std::fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, ["ecg"], "no staging folder left");
        assert!(root.join("src/lib.rs").is_file());
    }

    #[test]
    fn next_steps_say_what_to_type() {
        assert_eq!(
            next_steps("demo", Template::VitalsAnomaly),
            "created `demo` from the `vitals-anomaly` template\n\nnext steps:\n    cd demo\n    cargo medwasm build --target wasmtime --release\n    cargo medwasm bench --target wasmtime\n"
        );
        let blank = next_steps("demo", Template::Blank);
        assert!(blank.contains("it builds once it holds a model"));
        assert!(blank.contains(
            "    cd demo\n    cargo medwasm import <model.onnx>\n    cargo medwasm build"
        ));
    }
}
