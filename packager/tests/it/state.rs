//! Stateful packages: `[state]` in the manifest names the model input the state is read from and
//! the output it is written to.

use lightchain_packager::{Manifest, PackageError, build, load};
use lightchain_test_utils::{edit, template_project as project};

use super::{issues, manifest_of, params};

fn template() -> String {
    manifest_of("stateful")
}

#[test]
fn state_declarations_are_checked_with_their_lines() {
    let m = Manifest::parse(&template()).unwrap();
    let s = m.state.as_ref().unwrap();
    assert_eq!((s.input.as_str(), s.output.as_str()), ("avg", "new_avg"));
    assert_eq!(s.initial, 0.0);

    let line_of = |text: &str, pat: &str| text[..text.find(pat).unwrap()].lines().count() + 1;
    // Undeclared names, each at its line.
    let bad = template()
        .replace("input = \"avg\"", "input = \"mean\"")
        .replace("output = \"new_avg\"", "output = \"next\"");
    let shown = issues(&bad);
    assert!(
        shown.iter().any(
            |s| s.contains("state input \"mean\" is not declared in [[inputs]]")
                && s.contains(&format!("line {}", line_of(&bad, "input = \"mean\"")))
        ),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.contains("state output \"next\" is not declared in [[outputs]]")),
        "{shown:?}"
    );
    // An initial value outside the state's range; attested mode; the state without a range.
    let bad = template()
        .replace("initial = 0.0", "initial = 2.5")
        .replace("scale = \"auto\"", "scale = \"auto\"\nmode = \"attested\"");
    let shown = issues(&bad);
    assert!(
        shown
            .iter()
            .any(|s| s.contains("outside the state's range [0, 1]")),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|s| s.contains("must be proven")),
        "{shown:?}"
    );
    let bad = template().replace("shape = [1, 2]\nrange = [0.0, 1.0]", "shape = [1, 2]");
    let shown = issues(&bad);
    assert!(
        shown
            .iter()
            .any(|s| s.contains("give the state input \"avg\" a range")),
        "{shown:?}"
    );
    // A state whose input and output differ in shape (probs is [1, 2], features [1, 8]).
    let bad = template().replace("input = \"avg\"", "input = \"features\"");
    let shown = issues(&bad);
    assert!(
        shown
            .iter()
            .any(|s| s.contains("must both be f32 of one shape")),
        "{shown:?}"
    );
    // Unknown keys are refused.
    let bad = template().replace("initial = 0.0", "initial = 0.0\ndecay = 0.5");
    assert!(issues(&bad)[0].contains("decay"));
}

#[test]
fn the_stateful_template_packages_and_proves_its_vectors() {
    let dir = project("stateful");
    // Every test vector is proven (from the state its input file gives) and verified.
    let (bytes, pkg) = build(dir.path(), &params(), true, &mut |_| {}).unwrap();
    assert!(pkg.program.state);
    let names: Vec<&str> = pkg
        .program
        .outputs
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(names, ["probs", "new_avg"]);
    assert_eq!(
        pkg.compile.quant.state,
        Some(pkg.manifest.state.as_ref().unwrap().spec())
    );
    // Loading rebuilds the same stateful program from the ONNX model and the compile record.
    let back = load(&bytes).unwrap();
    assert_eq!(back.program.id(), pkg.program.id());
    // Too little memory for one circuit: a stateful program is not cut into segments.
    edit(dir.path(), "lightchain.toml", |s| {
        s.replace("memory_mb = 512", "memory_mb = 50")
    });
    match build(dir.path(), &params(), false, &mut |_| {}) {
        Err(PackageError::MemoryLimit { reason, .. }) => {
            assert!(reason.contains("stateful"), "{reason}")
        }
        r => panic!(
            "a stateful package over the memory limit: {:?}",
            r.map(|_| ())
        ),
    }
}
