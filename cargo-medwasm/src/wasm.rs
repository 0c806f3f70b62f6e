//! WebAssembly post-processing shared by the wasm targets: dropping custom sections,
//! Binaryen's `wasm-opt`, reading and writing custom sections, the import list, and
//! the size split of an artifact.
//!
//! Sections are read with `wasmparser` and written with `wasm-encoder` (both already
//! in the build through Wasmtime), which reject what a hand-written reader let
//! through, such as an overlong LEB128.

use std::ops::Range;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use wasm_encoder::Section as _;
use wasmparser::{Encoding, Parser, Payload};

use crate::report::Size;

// walrus and wasm-opt

/// Drops the `name`, `producers`, `target_features`, DWARF and every other custom
/// section: a release artifact carries code, data and our manifest only.
pub fn strip_custom_sections(wasm: &[u8]) -> Result<Vec<u8>> {
    let mut config = walrus::ModuleConfig::new();
    config
        .generate_name_section(false)
        .generate_producers_section(false)
        .generate_dwarf(false);
    let mut module = config
        .parse(wasm)
        .context("cannot parse the module cargo built; this is a bug in cargo-medwasm or rustc")?;
    let ids: Vec<_> = module.customs.iter().map(|(id, _)| id).collect();
    for id in ids {
        module.customs.delete(id);
    }
    Ok(module.emit_wasm())
}

/// What rustc 1.95 emits for `wasm32` by default, plus the `simd128` we ask for.
/// Binaryen must accept each (it rejects the module otherwise) and may then use them.
const WASM_FEATURES: &[wasm_opt::Feature] = &[
    wasm_opt::Feature::MutableGlobals,
    wasm_opt::Feature::SignExt,
    wasm_opt::Feature::TruncSat,
    wasm_opt::Feature::BulkMemory,
    wasm_opt::Feature::ReferenceTypes,
    wasm_opt::Feature::Multivalue,
    wasm_opt::Feature::Simd,
];

/// Runs Binaryen `-O3` on `wasm`, using files next to `artifact` (its API is file based).
pub fn optimize(wasm: &[u8], artifact: &Path) -> Result<Vec<u8>> {
    let input = artifact.with_extension("pre-opt.wasm");
    let output = artifact.with_extension("opt.wasm");
    std::fs::write(&input, wasm).with_context(|| format!("cannot write `{}`", input.display()))?;
    let mut options = wasm_opt::OptimizationOptions::new_opt_level_3();
    options.debug_info(false);
    for &feature in WASM_FEATURES {
        options.enable_feature(feature);
    }
    let result = options.run(&input, &output);
    let _ = std::fs::remove_file(&input);
    result.map_err(|e| {
        anyhow::anyhow!(
            "wasm-opt rejected the module: {e}; this is a bug in cargo-medwasm, please report it at {}/issues with the output of `cargo medwasm build --release -v` (`cargo medwasm build` without `--release` skips wasm-opt)",
            env!("CARGO_PKG_REPOSITORY")
        )
    })?;
    let optimized =
        std::fs::read(&output).with_context(|| format!("cannot read `{}`", output.display()))?;
    let _ = std::fs::remove_file(&output);
    Ok(optimized)
}

/// One section of a wasm module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    /// Section id; 0 is a custom section.
    pub id: u8,
    /// Name of a custom section.
    pub name: Option<&'a str>,
    /// Bytes of the whole section, id and size included.
    pub whole: Range<usize>,
    /// Bytes of the contents (after a custom section's name).
    pub payload: Range<usize>,
}

/// Splits a core wasm module into its sections.
pub fn sections(wasm: &[u8]) -> Result<Vec<Section<'_>>> {
    let mut out = Vec::new();
    // Sections follow each other without gaps, so a section's id byte sits where the
    // previous one (or the 8-byte header) ended.
    let mut end = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| anyhow!("malformed WebAssembly module: {e}"))?;
        match &payload {
            Payload::Version {
                encoding, range, ..
            } => {
                if *encoding != Encoding::Module {
                    bail!("not a core WebAssembly module (a component or an unknown encoding)");
                }
                end = range.end;
            }
            Payload::CustomSection(reader) => {
                let range = reader.range();
                out.push(Section {
                    id: 0,
                    name: Some(reader.name()),
                    whole: end..range.end,
                    payload: reader.data_offset()..range.end,
                });
                end = range.end;
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    out.push(Section {
                        id,
                        name: None,
                        whole: end..range.end,
                        payload: range.clone(),
                    });
                    end = range.end;
                }
            }
        }
    }
    Ok(out)
}

/// The contents of the first custom section called `name`, if any.
pub fn custom_section<'a>(wasm: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    Ok(sections(wasm)?
        .into_iter()
        .find(|s| s.name == Some(name))
        .map(|s| &wasm[s.payload]))
}

/// Replaces every custom section called `name` by one holding `data`, at the end.
pub fn set_custom_section(wasm: &mut Vec<u8>, name: &str, data: &[u8]) -> Result<()> {
    let stale: Vec<Range<usize>> = sections(wasm)?
        .into_iter()
        .filter(|s| s.name == Some(name))
        .map(|s| s.whole)
        .collect();
    for range in stale.into_iter().rev() {
        wasm.drain(range);
    }
    if u32::try_from(data.len() + name.len() + 5).is_err() {
        bail!("custom section `{name}` would be over 4 GiB");
    }
    wasm_encoder::CustomSection {
        name: name.into(),
        data: data.into(),
    }
    .append_to(wasm);
    Ok(())
}

/// `(module, name)` of every import of a core module.
pub fn imports(wasm: &[u8]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ImportSection(reader) =
            payload.map_err(|e| anyhow!("malformed WebAssembly module: {e}"))?
        {
            for import in reader.into_imports() {
                let import = import.map_err(|e| anyhow!("malformed import section: {e}"))?;
                out.push((import.module.to_string(), import.name.to_string()));
            }
        }
    }
    Ok(out)
}

/// Splits the artifact size into code, the model blob and custom sections.
///
/// The blob sits in a data segment, so its size is taken from the manifest; metadata
/// is every custom section with its header; code is the rest (including the wasm
/// structure and any other static data).
pub fn size_split(wasm: &[u8], blob_bytes: u64) -> Result<Size> {
    let total = wasm.len() as u64;
    let metadata: u64 = sections(wasm)?
        .iter()
        .filter(|s| s.id == 0)
        .map(|s| s.whole.len() as u64)
        .sum();
    let weights = blob_bytes.min(total - metadata);
    Ok(Size {
        total,
        code: total - metadata - weights,
        weights,
        metadata,
    })
}

/// A module with one function, one 100-byte data segment and one custom section.
#[cfg(test)]
pub(crate) fn small_module() -> Vec<u8> {
    let mut config = walrus::ModuleConfig::new();
    config.generate_producers_section(false);
    let mut module = walrus::Module::with_config(config);
    let memory = module.memories.add_local(false, false, 1, None, None);
    module.exports.add("memory", memory);
    let mut f = walrus::FunctionBuilder::new(&mut module.types, &[], &[walrus::ValType::I32]);
    f.func_body().i32_const(7);
    let func = f.finish(vec![], &mut module.funcs);
    module.exports.add("seven", func);
    module.data.add(
        walrus::DataKind::Active {
            memory,
            offset: walrus::ConstExpr::Value(walrus::ir::Value::I32(16)),
        },
        vec![0xab; 100],
    );
    module.customs.add(walrus::RawCustomSection {
        name: "extra".into(),
        data: vec![1, 2, 3],
    });
    module.emit_wasm()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_size_split() {
        let mut wasm = small_module();
        let before = wasm.len();
        set_custom_section(&mut wasm, "medwasm.manifest", b"{}").unwrap();
        // id + size + name length + 16-byte name + 2-byte payload
        assert_eq!(wasm.len() - before, 1 + 1 + 1 + 16 + 2);
        let customs: Vec<_> = sections(&wasm)
            .unwrap()
            .into_iter()
            .filter_map(|s| s.name)
            .collect();
        assert!(
            customs.contains(&"extra") && customs.contains(&"medwasm.manifest"),
            "{customs:?}"
        );

        let size = size_split(&wasm, 100).unwrap();
        let custom_bytes: u64 = sections(&wasm)
            .unwrap()
            .iter()
            .filter(|s| s.id == 0)
            .map(|s| s.whole.len() as u64)
            .sum();
        assert_eq!(size.total, wasm.len() as u64);
        assert_eq!(size.metadata, custom_bytes);
        assert_eq!(size.weights, 100);
        assert_eq!(size.code + size.weights + size.metadata, size.total);
        // The data segment alone is over 100 bytes, so code is the small rest.
        assert!(size.code < 100, "{size:?}");
        // A blob larger than the module (stale manifest) cannot make code negative.
        assert_eq!(size_split(&wasm, 1 << 20).unwrap().code, 0);
    }

    #[test]
    fn custom_section_is_replaced_not_duplicated() {
        let mut wasm = small_module();
        set_custom_section(&mut wasm, "medwasm.manifest", b"old").unwrap();
        set_custom_section(&mut wasm, "medwasm.manifest", b"new!").unwrap();
        let ours: Vec<_> = sections(&wasm)
            .unwrap()
            .into_iter()
            .filter(|s| s.name == Some("medwasm.manifest"))
            .collect();
        assert_eq!(ours.len(), 1);
        assert_eq!(&wasm[ours[0].payload.clone()], b"new!");
        // walrus still reads the module, so the encoding is valid.
        let module = walrus::Module::from_buffer(&wasm).unwrap();
        assert!(
            module
                .customs
                .iter()
                .any(|(_, s)| s.name() == "medwasm.manifest")
        );
    }
    #[test]
    fn stripping_keeps_code_and_drops_customs() {
        let wasm = small_module();
        let stripped = strip_custom_sections(&wasm).unwrap();
        let parsed = sections(&stripped).unwrap();
        assert!(parsed.iter().all(|s| s.id != 0), "{parsed:?}");
        let module = walrus::Module::from_buffer(&stripped).unwrap();
        assert!(module.exports.iter().any(|e| e.name == "seven"));
    }

    #[test]
    fn optimize_keeps_simd_modules_valid() {
        // A function using a v128 op: Binaryen must accept it with our feature set.
        let mut module = walrus::Module::default();
        let mut f = walrus::FunctionBuilder::new(&mut module.types, &[], &[walrus::ValType::I32]);
        f.func_body()
            .const_(walrus::ir::Value::V128(3))
            .unop(walrus::ir::UnaryOp::I32x4ExtractLane { idx: 0 });
        let func = f.finish(vec![], &mut module.funcs);
        module.exports.add("three", func);
        let wasm = module.emit_wasm();
        let dir = tempfile::tempdir().unwrap();
        let optimized = optimize(&wasm, &dir.path().join("x.wasm")).unwrap();
        let module = walrus::Module::from_buffer(&optimized).unwrap();
        assert!(module.exports.iter().any(|e| e.name == "three"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temporary files left"
        );
    }

    #[test]
    fn bad_modules_are_errors_not_panics() {
        assert!(sections(b"").is_err());
        assert!(
            sections(b"\0asm\x0d\0\x01\0").is_err(),
            "a component is not a core module"
        );
        assert!(
            sections(b"\0asm\x01\0\0\0\x01\x05\0").is_err(),
            "section past the end"
        );
        assert!(
            sections(b"\0asm\x01\0\0\0\x00\x02\x05a").is_err(),
            "name past the section"
        );
        assert!(sections(b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\xff\xff").is_err());
        // A name length whose fifth LEB128 byte sets bits above 32: a reader that
        // drops them would see a one-byte name `a`.
        assert!(
            sections(b"\0asm\x01\0\0\0\x00\x06\x81\x80\x80\x80\x10a").is_err(),
            "overlong LEB128"
        );
        assert_eq!(sections(b"\0asm\x01\0\0\0").unwrap(), vec![]);
    }
}
