//! `cargo medwasm serve`: builds the browser package and serves the project's demo
//! page (`web/`), the package (`pkg/`) and the sample vectors (`demo.json`) on
//! localhost, so that a developer opens the page, presses Run and sees the detector
//! work in their own browser.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};

use crate::args::ProjectArgs;
use crate::http::{Request, Response, Server, mime_type};
use crate::project::Project;
use crate::targets::browser::harness::encode_f32;
use crate::targets::browser::{Browser, package};
use crate::targets::target::Target as _;
use crate::templates::{File, Template};
use crate::ui::Ui;
use crate::vectors::load_cases;

/// Port `serve` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 8421;

/// Serve the detector's demo page on localhost.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1; 0 picks any free port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Serve the debug build instead of the release build.
    #[arg(long)]
    pub debug: bool,
    /// The detector project.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Where the demo page's own files come from.
enum Web {
    /// The project's `web/` folder.
    Folder(PathBuf),
    /// The copy embedded in cargo-medwasm, for projects made before demo pages.
    Embedded(&'static [File]),
}

impl ServeArgs {
    /// Builds, serves until interrupted, and prints the URL on stdout.
    pub fn run(self, ui: &Ui) -> Result<()> {
        let project = self.project.locate(ui)?;
        let manifest = project.manifest()?;
        let built = Browser.build(&project, !self.debug, ui)?;
        let pkg = built
            .artifact
            .parent()
            .context("the package has no folder; this is a bug in cargo-medwasm")?
            .to_path_buf();
        let module = package::module_file(&built.artifact)?;
        let module_name = module
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();

        let web_dir = project.root.join("web");
        let web = if web_dir.join("index.html").is_file() {
            Web::Folder(web_dir)
        } else {
            ui.note("no `web/index.html` in this project: serving the default demo page (copy it from a new project to change it)");
            Web::Embedded(Template::Blank.files()?)
        };

        let demo = demo_json(&project, &manifest, &format!("./pkg/{module_name}"), ui)?;
        let handler = move |request: &Request| -> Response {
            if request.method != "GET" {
                return Response::error(405, "only GET is served");
            }
            let path = request.path.as_str();
            if path == "/demo.json" {
                return Response::ok("application/json", demo.clone());
            }
            if let Some(rest) = path.strip_prefix("/pkg/") {
                return Response::file(&pkg, rest);
            }
            match &web {
                Web::Folder(dir) => Response::file(dir, path),
                Web::Embedded(files) => {
                    let rel = match path.trim_start_matches('/') {
                        "" => "index.html",
                        other => other,
                    };
                    let wanted = format!("web/{rel}");
                    match files.iter().find(|(name, _)| *name == wanted) {
                        Some((name, bytes)) => {
                            Response::ok(mime_type(std::path::Path::new(name)), *bytes)
                        }
                        None => Response::error(404, format!("not found: {path}")),
                    }
                }
            }
        };
        let server = Server::start(self.port, Arc::new(handler))?;
        println!(
            "serving `{}` at {} (open it, press Run; Ctrl-C stops)",
            project.name,
            server.url()
        );
        // A test or script reading our stdout through a pipe needs the URL now.
        std::io::stdout()
            .flush()
            .context("cannot write to stdout")?;
        server.wait();
        Ok(())
    }
}

/// The demo's data: the module to import, the tolerance, and every sample vector's
/// inputs and expected outputs as base64 little-endian f32.
fn demo_json(
    project: &Project,
    manifest: &crate::manifest::Manifest,
    module: &str,
    ui: &Ui,
) -> Result<Vec<u8>> {
    let (vectors, note) = match load_cases(project, manifest, &Ui::silent()) {
        Ok(cases) => (cases, String::new()),
        Err(err) => {
            let note = format!("{err:#}");
            ui.warn(format!("the demo page gets no sample vectors: {note}"));
            (Vec::new(), note)
        }
    };
    let vectors: Vec<serde_json::Value> = vectors
        .iter()
        .map(|case| {
            serde_json::json!({
                "inputs": case.inputs.iter().map(|i| encode_f32(i)).collect::<Vec<_>>(),
                "expected": case.expected.iter().map(|e| e.as_ref().map(|e| encode_f32(e))).collect::<Vec<_>>(),
            })
        })
        .collect();
    let value = serde_json::json!({
        "name": project.name,
        "module": module,
        "tolerance": { "abs": project.abs_tolerance(), "rel": project.rel_tolerance() },
        "vectors": vectors,
        "note": note,
    });
    serde_json::to_vec(&value).context("cannot serialize the demo data")
}
