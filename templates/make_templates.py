#!/usr/bin/env python3
"""Builds the models of the `lightchain init` templates from the fixtures.

Each template model is a fixture model whose batch dimension (and, for the text classifier, the
sequence length) is made symbolic, so that `lightchain profile` can measure the model at several
input sizes; the manifest fixes the size a package is built for. Test vectors are fixture inputs.
Run from the repository root: python templates/make_templates.py (needs the `onnx` package).
"""
import json
import os
import shutil

import numpy as np
import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "fixtures")
TPL = os.path.join(ROOT, "templates")


def symbolic(src, dst, dims):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    """Copies an ONNX model, naming the given (input/output name, axis) dims symbolically."""
    m = onnx.load(src)
    for vi in list(m.graph.input) + list(m.graph.output):
        for (name, axis, param) in dims:
            if vi.name == name:
                d = vi.type.tensor_type.shape.dim[axis]
                d.ClearField("dim_value")
                d.dim_param = param
    del m.graph.value_info[:]
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, dst)


def copy(name, files):
    for src, dst in files:
        out = os.path.join(TPL, name, dst)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copyfile(os.path.join(FIX, src), out)


symbolic(os.path.join(FIX, "digits_mlp/model.onnx"), os.path.join(TPL, "digits/model.onnx"),
         [("x", 0, "batch"), ("logits", 0, "batch")])
copy("digits", [("digits_mlp/input.json", "tests/seven.json"), ("digits_mlp/expected.json", "tests/seven.expected.json"),
                ("digits_mlp/input_1.json", "tests/six.json"), ("digits_mlp/input_2.json", "tests/three.json")])

symbolic(os.path.join(FIX, "sentiment_embed/model.onnx"), os.path.join(TPL, "sentiment/model.onnx"),
         [("tokens", 0, "batch"), ("tokens", 1, "seq"), ("logits", 0, "batch")])
copy("sentiment", [("sentiment_embed/input.json", "tests/negative.json"),
                   ("sentiment_embed/expected.json", "tests/negative.expected.json"),
                   ("sentiment_embed/input_1.json", "tests/positive.json"),
                   ("sentiment_embed/input_2.json", "tests/positive-2.json")])

symbolic(os.path.join(FIX, "fraud_tabular/model.onnx"), os.path.join(TPL, "fraud/model.onnx"),
         [("features", 0, "batch"), ("probs", 0, "batch")])
copy("fraud", [("fraud_tabular/input.json", "tests/legit.json"), ("fraud_tabular/expected.json", "tests/legit.expected.json"),
               ("fraud_tabular/input_1.json", "tests/fraud.json"), ("fraud_tabular/input_2.json", "tests/legit-2.json")])
# The transformer keeps its fixed shapes: its Reshapes into heads name the batch size, as
# torch.onnx.export writes them for a fixed input.
copy("transformer", [("digits_vit/model.onnx", "model.onnx"), ("digits_vit/input.json", "tests/seven.json"),
                     ("digits_vit/expected.json", "tests/seven.expected.json"),
                     ("digits_vit/input_2.json", "tests/three.json")])


def split_pipeline(src, dst_dir, cut, cut_name, param):
    """Cuts an ONNX model at the value `cut` into two stage models: the first computes `cut`
    (renamed `cut_name`), the second reads it as its input `x`. Both keep a symbolic batch."""
    os.makedirs(dst_dir, exist_ok=True)
    m = onnx.load(src)
    g = m.graph
    first_in, last_out = g.input[0].name, g.output[0].name
    tmp = os.path.join(dst_dir, "full.onnx")
    onnx.save(m, tmp)
    embed, classify = os.path.join(dst_dir, "embed.onnx"), os.path.join(dst_dir, "classify.onnx")
    onnx.utils.extract_model(tmp, embed, [first_in], [cut])
    onnx.utils.extract_model(tmp, classify, [cut], [last_out])
    os.remove(tmp)
    for path, old, new in [(embed, cut, cut_name), (classify, cut, "x")]:
        m = onnx.load(path)
        for n in m.graph.node:
            n.input[:] = [new if i == old else i for i in n.input]
            n.output[:] = [new if o == old else o for o in n.output]
        for vi in list(m.graph.input) + list(m.graph.output):
            if vi.name == old:
                vi.name = new
            d = vi.type.tensor_type.shape.dim[0]
            d.ClearField("dim_value")
            d.dim_param = param
        del m.graph.value_info[:]
        onnx.checker.check_model(m, full_check=True)
        onnx.save(m, path)


# The pipeline template: the fraud model cut after its hidden layer into a feature stage
# (standardise, 8 -> 16, ReLU) and a classifier stage (16 -> 2, softmax).
split_pipeline(os.path.join(FIX, "fraud_tabular/model.onnx"), os.path.join(TPL, "pipeline"), "h_relu",
               "embedding", "batch")
copy("pipeline", [("fraud_tabular/input.json", "tests/legit.json"), ("fraud_tabular/expected.json", "tests/legit.expected.json"),
                  ("fraud_tabular/input_1.json", "tests/fraud.json"), ("fraud_tabular/input_2.json", "tests/legit-2.json")])


def stateful(src, dst, state, decay):
    """Adds a running average of the model's output as state: an input `state` (the average so
    far) and an output `new_state = decay * state + (1 - decay) * output`, both shaped like the
    output, with a symbolic batch."""
    m = onnx.load(src)
    g = m.graph
    out = g.output[0]
    shape = [d.dim_value for d in out.type.tensor_type.shape.dim]
    g.input.append(onnx.helper.make_tensor_value_info(state, onnx.TensorProto.FLOAT, shape))
    g.initializer.extend([onnx.numpy_helper.from_array(np.array(decay, dtype=np.float32), "decay"),
                          onnx.numpy_helper.from_array(np.array(1 - decay, dtype=np.float32), "gain")])
    g.node.extend([
        onnx.helper.make_node("Mul", [state, "decay"], ["kept"], name="state_decay"),
        onnx.helper.make_node("Mul", [out.name, "gain"], ["added"], name="state_gain"),
        onnx.helper.make_node("Add", ["kept", "added"], ["new_" + state], name="state_update"),
    ])
    g.output.append(onnx.helper.make_tensor_value_info("new_" + state, onnx.TensorProto.FLOAT, shape))
    for vi in list(g.input) + list(g.output):
        d = vi.type.tensor_type.shape.dim[0]
        d.ClearField("dim_value")
        d.dim_param = "batch"
    del g.value_info[:]
    onnx.checker.check_model(m, full_check=True)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    onnx.save(m, dst)


# The stateful template: the fraud model with a running average of its scores kept on chain
# per account (state `avg`, decay 0.75).
stateful(os.path.join(FIX, "fraud_tabular/model.onnx"), os.path.join(TPL, "stateful/model.onnx"), "avg", 0.75)
for src, dst, avg in [("input.json", "legit.json", [0.0, 0.0]), ("input_1.json", "fraud.json", [0.5, 0.5]),
                      ("input_2.json", "legit-2.json", [1.0, 0.0])]:
    # A test vector gives the state as well: the run from that state.
    with open(os.path.join(FIX, "fraud_tabular", src)) as f:
        doc = json.load(f)
    doc["inputs"]["avg"] = [avg]
    os.makedirs(os.path.join(TPL, "stateful/tests"), exist_ok=True)
    with open(os.path.join(TPL, "stateful/tests", dst), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
print("templates updated")
