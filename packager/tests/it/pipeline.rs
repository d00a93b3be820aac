//! Pipeline packages: `[[stages]]` in the manifest, merged into one program.

use lightchain_packager::{Manifest, PackageError, build, load};
use lightchain_test_utils::{edit, template_project as project};

use super::{issues, manifest_of, params};

fn template() -> String {
    manifest_of("pipeline")
}

#[test]
fn stage_declarations_are_checked_with_their_lines() {
    let m = Manifest::parse(&template()).unwrap();
    assert_eq!(m.onnx, None);
    let stages: Vec<(&str, &str)> = m
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.onnx.to_str().unwrap()))
        .collect();
    assert_eq!(
        stages,
        [("embed", "embed.onnx"), ("classify", "classify.onnx")]
    );
    assert_eq!(
        m.stages[1].inputs,
        [("x".to_string(), "embed.embedding".to_string())]
    );

    // A model file and stages at once; neither.
    let both = template().replace(
        "version = \"0.1.0\"",
        "version = \"0.1.0\"\nonnx = \"m.onnx\"",
    );
    let shown = issues(&both);
    assert!(shown[0].contains("remove [model] onnx"), "{shown:?}");
    let start = template().find("[[stages]]").unwrap();
    let end = template().find("[[inputs]]").unwrap();
    let neither = format!("{}{}", &template()[..start], &template()[end..]);
    let shown = issues(&neither);
    assert!(
        shown[0].contains("or a pipeline as [[stages]]"),
        "{shown:?}"
    );

    // Reads from a later stage, from nothing, a stage name twice, a path outside, a bad name.
    let bad = template()
        .replace("name = \"embed\"\nonnx = \"embed.onnx\"", "name = \"embed\"\nonnx = \"../embed.onnx\"\ninputs = { features = \"classify.probs\" }")
        .replace("name = \"classify\"", "name = \"embed\"");
    let shown = issues(&bad);
    assert!(
        shown
            .iter()
            .any(|s| s.starts_with("line 11: a stage's onnx must be a path inside")),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|s| s.contains("input \"features\" reads \"classify.probs\"; it must name STAGE.OUTPUT of an earlier stage")),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.contains("stage \"embed\" is declared twice")),
        "{shown:?}"
    );
    let shown = issues(&template().replace("name = \"classify\"", "name = \"Classify.v2\""));
    assert!(
        shown.iter().any(|s| s.contains("a stage name must be")),
        "{shown:?}"
    );
    let shown = issues(&template().replace("\"embed.embedding\"", "\"embedding\""));
    assert!(
        shown.iter().any(|s| s.contains("reads \"embedding\"")),
        "{shown:?}"
    );
}

/// The template packages as one program whose only output is the last stage's: the tensor
/// between the stages is no output, so no receipt or public input can show it.
#[test]
fn the_pipeline_template_packages_as_one_program() {
    let dir = project("pipeline");
    let (bytes, pkg) = build(dir.path(), &params(), true, &mut |_| {}).unwrap();
    assert_eq!(pkg.program.outputs.len(), 1);
    assert_eq!(pkg.program.outputs[0].name, "probs");
    assert_eq!(pkg.program.inputs.len(), 1);
    assert!(
        pkg.program
            .nodes
            .iter()
            .any(|n| n.name.starts_with("embed/"))
    );
    assert!(
        pkg.program
            .nodes
            .iter()
            .any(|n| n.name.starts_with("classify/"))
    );
    assert!(pkg.accuracy.max_rel_error <= 0.01);
    let loaded = load(&bytes).unwrap();
    assert_eq!(loaded.info.model_id, pkg.info.model_id);
    assert_eq!(loaded.manifest.stages.len(), 2);
    // Packaging is deterministic for pipelines too.
    let (again, _) = build(dir.path(), &params(), false, &mut |_| {}).unwrap();
    assert_eq!(again, bytes);
}

/// `STAGE.OUTPUT` in [[outputs]] publishes an earlier stage's output.
#[test]
fn a_stage_output_declared_in_outputs_is_public() {
    let dir = project("pipeline");
    edit(dir.path(), "lightchain.toml", |s| {
        s.replace(
            "[proving]",
            "[[outputs]]\nname = \"embed.embedding\"\ndtype = \"f32\"\nshape = [1, 16]\n\n[proving]",
        )
        .replace("expected = \"tests/legit.expected.json\"\n", "")
    });
    let (_, pkg) = build(dir.path(), &params(), false, &mut |_| {}).unwrap();
    let names: Vec<&str> = pkg
        .program
        .outputs
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["probs", "embed.embedding"],
        "in the manifest's order"
    );
    let text = std::fs::read_to_string(dir.path().join("tests/fraud.json")).unwrap();
    let inputs = pkg.model.parse_inputs(&text).unwrap();
    let out = pkg.program.run_float(&inputs).unwrap();
    assert_eq!(out[1].shape, [1, 16]);
    assert!(out[1].data.iter().all(|&v| v >= 0.0), "after a ReLU");
}

#[test]
fn a_broken_stage_is_named() {
    let dir = project("pipeline");
    std::fs::write(dir.path().join("classify.onnx"), b"not onnx").unwrap();
    let err = build(dir.path(), &params(), false, &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PackageError::Aivm(_)), "{msg}");
    assert!(
        msg.starts_with("pipeline: stage \"classify\" (classify.onnx): "),
        "{msg}"
    );

    // A stage fed a tensor of the wrong shape.
    let dir = project("pipeline");
    std::fs::copy(
        dir.path().join("embed.onnx"),
        dir.path().join("classify.onnx"),
    )
    .unwrap();
    edit(dir.path(), "lightchain.toml", |s| {
        s.replace(
            "inputs = { x = \"embed.embedding\" }",
            "inputs = { features = \"embed.embedding\" }",
        )
    });
    let msg = build(dir.path(), &params(), false, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(
            "input \"features\" has shape [batch, 8] but \"embed.embedding\" has shape [batch, 16]"
        ),
        "{msg}"
    );
}
