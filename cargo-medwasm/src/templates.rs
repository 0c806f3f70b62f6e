//! The project templates of `cargo medwasm new`, embedded in the binary by
//! `build.rs` from `templates/` (`*.hbs` files are rendered, the rest copied; files
//! under `templates/common/` belong to every template).

use anyhow::{Context as _, Result};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

pub use embedded::File;

/// Templates `new` can render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// Autoencoder over a window of heart rate, SpO2 and respiration rate (demo model).
    VitalsAnomaly,
    /// A detector with no model yet: import one with `cargo medwasm import`.
    Blank,
}

impl Template {
    /// Folder name under `templates/`, the same as the `--template` value.
    pub fn dir_name(self) -> &'static str {
        match self {
            Template::VitalsAnomaly => "vitals-anomaly",
            Template::Blank => "blank",
        }
    }

    /// The ONNX model the template ships, imported after rendering.
    pub fn model(self) -> Option<&'static str> {
        match self {
            Template::VitalsAnomaly => Some("model/vitals_ae.onnx"),
            Template::Blank => None,
        }
    }

    /// The embedded files: `(relative path with '/', contents)`.
    pub fn files(self) -> Result<&'static [File]> {
        embedded::TEMPLATES
            .iter()
            .find(|(name, _)| *name == self.dir_name())
            .map(|(_, files)| *files)
            .with_context(|| {
                format!(
                    "template `{}` is not embedded in this binary; this is a bug in cargo-medwasm (its build script did not find `templates/{}`), please report it",
                    self.dir_name(),
                    self.dir_name()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum as _;

    use super::*;

    #[test]
    fn every_template_is_embedded_and_every_embedded_one_is_offered() {
        for template in Template::value_variants() {
            let value = template.to_possible_value().unwrap();
            assert_eq!(
                value.get_name(),
                template.dir_name(),
                "`--template` value and folder differ"
            );
            assert!(!template.files().unwrap().is_empty());
        }
        for (name, _) in embedded::TEMPLATES {
            assert!(
                Template::value_variants()
                    .iter()
                    .any(|t| t.dir_name() == *name),
                "templates/{name} is embedded but `--template` does not offer it"
            );
        }
        let model = Template::VitalsAnomaly.model().unwrap();
        let files = Template::VitalsAnomaly.files().unwrap();
        assert!(
            files
                .iter()
                .any(|(path, bytes)| *path == model && !bytes.is_empty())
        );
    }
}
