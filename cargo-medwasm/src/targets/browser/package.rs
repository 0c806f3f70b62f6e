//! The browser target's package: the ES module loader, its TypeScript declarations,
//! `package.json` and a README written next to the optimized `.wasm` in
//! `target/medwasm/browser/pkg/`.
//!
//! The loader is generated instead of using wasm-bindgen: a detector imports
//! nothing and exports a fixed C ABI (`docs/detector-abi.md`), so a hand-written
//! module of under 10 KiB drives it with no glue code to generate, no `wasm-bindgen`
//! version that has to match the detector's, and no extra tool to install (see
//! `docs/browser.md`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::artifact::Embedded;
use crate::files::write_atomically as write;
use crate::project::Project;

/// The loader template; `__NAME__`, `__TOOL__`, `__MANIFEST__`, `__BUILD__` and
/// `__WASM_FILE__` are replaced.
const LOADER_JS: &str = include_str!("../../../../targets/browser/loader.js");
/// The TypeScript declarations of the loader; `__NAME__` and `__TOOL__` are replaced.
const LOADER_DTS: &str = include_str!("../../../../targets/browser/loader.d.ts");

/// What the browser package weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PackageSize {
    /// The ES module loader, bytes.
    pub js: u64,
    /// The `.wasm`, bytes.
    pub wasm: u64,
    /// The model blob inside the `.wasm`, bytes.
    pub weights: u64,
    /// JS and wasm gzipped (`-9`) separately and added up: what a server sends.
    pub gzip: u64,
}

impl PackageSize {
    /// JS + wasm without the model blob: the part that does not grow with the model.
    pub fn without_weights(&self) -> u64 {
        (self.js + self.wasm).saturating_sub(self.weights)
    }
}

/// The folder of the browser package: `target/medwasm/browser/pkg/`.
pub fn package_dir(project: &Project) -> PathBuf {
    project.artifact_dir("browser").join("pkg")
}

/// File name stem of the package's files: the cargo package name.
fn stem(wasm_file: &Path) -> Result<String> {
    wasm_file
        .file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_string)
        .with_context(|| {
            format!(
                "`{}` has no UTF-8 file name; this is a bug in cargo-medwasm",
                wasm_file.display()
            )
        })
}

/// The `Inputs` and `Outputs` tuple types of the `.d.ts`: this detector's tensors
/// in order, each with its name, element type, shape and, for an int8 one (`--io
/// int8`), the scale and zero point that give its real values.
fn dts_io(manifest: &crate::manifest::Manifest) -> String {
    let entry = |t: &crate::manifest::TensorSpec, ty: &str| {
        let quant = match t.abi_int8() {
            Some(q) => format!(": real = {} · (q − ({}))", q.scale, q.zero_point),
            None => String::new(),
        };
        // The name is the model's: keep a `*/` in it from ending the comment.
        let name = t.name.replace("*/", "* /");
        format!(
            "  /** `{name}`, {} {:?}{quant} */ {ty},\n",
            if t.abi_int8().is_some() {
                "int8"
            } else {
                "f32"
            },
            t.shape
        )
    };
    let mut s = String::from("/** This detector's inputs, in order. */\nexport type Inputs = [\n");
    for t in &manifest.inputs {
        s += &entry(
            t,
            if t.abi_int8().is_some() {
                "Int8Input"
            } else {
                "Input"
            },
        );
    }
    s += "];\n/** This detector's outputs, in order. */\nexport type Outputs = [\n";
    for t in &manifest.outputs {
        s += &entry(
            t,
            if t.abi_int8().is_some() {
                "Int8Array"
            } else {
                "Float32Array"
            },
        );
    }
    s + "];"
}

/// Path of the loader beside the package's `.wasm`.
pub fn module_file(wasm_file: &Path) -> Result<PathBuf> {
    Ok(wasm_file.with_file_name(format!("{}.js", stem(wasm_file)?)))
}

/// Writes the loader, its declarations, `package.json` and the README beside
/// `wasm_file` (already written) and returns the loader's size in bytes.
pub fn write_package(project: &Project, wasm_file: &Path, embedded: &Embedded) -> Result<u64> {
    let wasm = std::fs::read(wasm_file)
        .with_context(|| format!("cannot read `{}`", wasm_file.display()))?;
    if let Err(err) = refuse_imports(&wasm) {
        // A module the loader cannot instantiate must not sit in the package.
        let _ = std::fs::remove_file(wasm_file);
        return Err(err);
    }
    let name = stem(wasm_file)?;
    let dir = wasm_file
        .parent()
        .context("the package `.wasm` has no folder; this is a bug in cargo-medwasm")?;
    let tool = format!("cargo-medwasm {}", env!("CARGO_PKG_VERSION"));
    let manifest =
        serde_json::to_string(&embedded.manifest).context("cannot serialize the manifest")?;
    let build = serde_json::to_string(&embedded.build).context("cannot serialize build info")?;
    let wasm_name = format!("{name}.wasm");
    let js = LOADER_JS
        .replace("__NAME__", &name)
        .replace("__TOOL__", &tool)
        .replace("__WASM_FILE__", &wasm_name)
        // Last: the JSON must not be searched for the placeholders above.
        .replace("__BUILD__", &build)
        .replace("__MANIFEST__", &manifest);
    let dts = LOADER_DTS
        .replace("__NAME__", &name)
        .replace("__TOOL__", &tool)
        .replace("__IO__", &dts_io(&embedded.manifest));

    write(&dir.join(format!("{name}.js")), js.as_bytes())?;
    write(&dir.join(format!("{name}.d.ts")), dts.as_bytes())?;
    write(
        &dir.join("package.json"),
        package_json(&name, &package_version(project), &embedded.build.tool).as_bytes(),
    )?;
    write(&dir.join("README.md"), readme(&name, embedded).as_bytes())?;

    Ok(js.len() as u64)
}

/// What the package beside `wasm_file` weighs, read back from disk.
pub fn measure_package(wasm_file: &Path, embedded: &Embedded) -> Result<PackageSize> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
    };
    let js = read(&module_file(wasm_file)?)?;
    let wasm = read(wasm_file)?;
    Ok(PackageSize {
        js: js.len() as u64,
        wasm: wasm.len() as u64,
        weights: embedded.manifest.blob_bytes,
        gzip: gzip_len(&js)? + gzip_len(&wasm)?,
    })
}

/// Fails when the module imports anything: the loader gives it no imports, so a
/// dependency that pulls in JS glue (wasm-bindgen, `getrandom` with its `js` feature …)
/// would only fail later, in the user's browser.
fn refuse_imports(wasm: &[u8]) -> Result<()> {
    let imports = crate::wasm::imports(wasm)
        .context("cannot parse the built module; this is a bug in cargo-medwasm")?;
    if let Some((module, name)) = imports.first() {
        anyhow::bail!(
            "the detector imports `{module}::{name}`, but a medwasm detector must import nothing to load in the browser package (see `docs/detector-abi.md`); a dependency pulls in JS glue (wasm-bindgen, `getrandom` with its `js` feature, …): remove it, or keep it out of the `wasm32` build with `[target.'cfg(not(target_arch = \"wasm32\"))'.dependencies]`"
        );
    }
    Ok(())
}

/// The detector crate's version, for `package.json`; `0.0.0` when cargo cannot say.
fn package_version(project: &Project) -> String {
    cargo_metadata::MetadataCommand::new()
        .manifest_path(&project.manifest_path)
        .no_deps()
        .exec()
        .ok()
        .and_then(|meta| meta.root_package().map(|p| p.version.to_string()))
        .unwrap_or_else(|| "0.0.0".to_string())
}

fn package_json(name: &str, version: &str, tool: &str) -> String {
    let js = format!("./{name}.js");
    let dts = format!("./{name}.d.ts");
    let wasm = format!("./{name}.wasm");
    let value = serde_json::json!({
        "name": name,
        "version": version,
        "description": format!("medwasm detector `{name}` as an ES module (built by {tool})"),
        "type": "module",
        "main": js,
        "module": js,
        "types": dts,
        "exports": {
            ".": { "types": dts, "default": js },
            (wasm.clone()): wasm,
            "./package.json": "./package.json"
        },
        "files": [js, dts, wasm, "README.md"],
        "sideEffects": false,
        "engines": { "node": ">=20" }
    });
    // `json!` values always serialize.
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

fn readme(name: &str, embedded: &Embedded) -> String {
    let inputs: Vec<String> = embedded
        .manifest
        .inputs
        .iter()
        .map(|t| format!("`{}` {:?} ({} elements)", t.name, t.shape, t.len()))
        .collect();
    format!(
        "# {name} (browser and Node.js package)\n\n\
         Built by {tool} from `{model}`. Inference runs locally in a WebAssembly sandbox;\n\
         nothing leaves the device.\n\n\
         ```js\n\
         import {{ Detector, MedwasmError }} from \"./{name}.js\";\n\n\
         const detector = await Detector.create();       // once\n\
         const result = detector.run(new Float32Array({len})); // many times\n\
         console.log(result.score, result.label, result.alert, result.outputs);\n\
         ```\n\n\
         Inputs: {inputs}. A wrong length throws `MedwasmError` with kind `InputLength`, a\n\
         NaN or infinite element kind `NonFinite`. `manifest` (also exported) describes the\n\
         model. Serve this folder over HTTP with `.wasm` as `application/wasm`; browsers\n\
         cannot load it from `file://`. Node.js 20 or newer imports it directly.\n\n\
         See `docs/browser.md` in the cargo-medwasm repository for the full API and\n\
         troubleshooting.\n",
        tool = embedded.build.tool,
        model = embedded.manifest.source.file,
        len = embedded.manifest.inputs.first().map_or(0, |t| t.len()),
        inputs = inputs.join(", "),
    )
}

/// Bytes of `data` gzipped at level 9.
pub fn gzip_len(data: &[u8]) -> Result<u64> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).context("cannot gzip")?;
    Ok(encoder.finish().context("cannot gzip")?.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_with_imports_are_refused() {
        let mut module = walrus::Module::default();
        let ty = module.types.add(&[], &[]);
        module.add_import_func("__wbindgen_placeholder__", "__wbindgen_describe", ty);
        let err = refuse_imports(&module.emit_wasm()).unwrap_err().to_string();
        assert!(
            err.contains("imports `__wbindgen_placeholder__::__wbindgen_describe`")
                && err.contains("wasm-bindgen"),
            "{err}"
        );
        assert!(refuse_imports(&walrus::Module::default().emit_wasm()).is_ok());
    }

    #[test]
    fn package_json_points_at_the_files() {
        let json: serde_json::Value =
            serde_json::from_str(&package_json("vitals-demo", "0.1.0", "cargo-medwasm 0.1.0"))
                .unwrap();
        assert_eq!(json["type"], "module");
        assert_eq!(json["exports"]["."]["default"], "./vitals-demo.js");
        assert_eq!(json["exports"]["."]["types"], "./vitals-demo.d.ts");
        assert_eq!(json["types"], "./vitals-demo.d.ts");
        assert_eq!(json["exports"]["./vitals-demo.wasm"], "./vitals-demo.wasm");
    }

    #[test]
    fn loader_templates_have_their_placeholders() {
        for placeholder in [
            "__NAME__",
            "__TOOL__",
            "__MANIFEST__",
            "__BUILD__",
            "__WASM_FILE__",
        ] {
            assert!(LOADER_JS.contains(placeholder), "{placeholder}");
        }
        assert!(LOADER_DTS.contains("__NAME__") && LOADER_DTS.contains("__IO__"));
        assert!(gzip_len(&[0; 10_000]).unwrap() < 100);
    }
}
