//! The targets a detector is built for and benched on, one module each: its spec
//! (Rust triple and flags), build step, runner and doctor checks behind
//! [`target::Target`]. [`all`] is the only list: adding a target means adding a
//! module and one line there.

pub mod browser;
pub mod device;
pub mod mcu;
pub mod node;
pub mod target;
pub mod wasmedge;
pub mod wasmtime;

use clap::builder::TypedValueParser as _;

use self::target::{Selection, Target};

/// Every target, in the order `--target all`, `doctor` and the help list them.
pub fn all() -> &'static [&'static dyn Target] {
    &[
        &wasmtime::Wasmtime,
        &wasmedge::WasmEdge,
        &browser::Browser,
        &node::Node,
        &mcu::Mcu,
    ]
}

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static dyn Target> {
    all().iter().copied().find(|t| t.name() == name)
}

/// The `--target` value parser: every target's name (with its `about` as help), and
/// `all`.
pub fn selection_parser() -> impl clap::builder::TypedValueParser<Value = Selection> {
    let values = all()
        .iter()
        .map(|t| clap::builder::PossibleValue::new(t.name()).help(t.about()))
        .chain([clap::builder::PossibleValue::new("all").help(
            "Every target this machine has (`bench`), or every target's artifact (`build`)",
        )]);
    clap::builder::PossibleValuesParser::new(values).map(|name: String| match find(&name) {
        Some(target) => Selection::One(target),
        // The parser only lets the names above through.
        None => Selection::All,
    })
}

impl Selection {
    /// The targets selected, in [`all`] order.
    pub fn targets(self) -> Vec<&'static dyn Target> {
        match self {
            Selection::All => all().to_vec(),
            Selection::One(target) => vec![target],
        }
    }

    /// True for `all`.
    pub fn is_all(self) -> bool {
        matches!(self, Selection::All)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_builds_resolve() {
        for (i, t) in all().iter().enumerate() {
            assert!(
                all()[..i].iter().all(|o| o.name() != t.name()),
                "`{}` listed twice",
                t.name()
            );
            assert!(t.name() != "all", "`all` is the selection of every target");
            let builder = find(t.builds_as()).expect("builds_as names a target");
            assert_eq!(builder.builds_as(), builder.name(), "{}", t.name());
            assert_eq!(
                builder.spec(),
                t.spec(),
                "{} builds as {}",
                t.name(),
                builder.name()
            );
        }
    }
}
