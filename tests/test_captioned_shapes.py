"""Captioned Shapes: rendering, captions ↔ attributes, the held-out split, the image parser and agreement scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from specvae.data import captioned_shapes as cs
from specvae.data.captioned_shapes import ShapeSpec


def all_specs():
    return [ShapeSpec(c, k, s, p) for c in cs.COLOURS for k in cs.KINDS for s in cs.SIZES for p in cs.POSITIONS]


def test_caption_round_trip_every_template_synonym_and_attribute():
    # every attribute value, through every clause template and every synonym, parses back to itself
    for spec in all_specs():
        for t in range(len(cs.CLAUSES)):
            for u in (0.0, 0.34, 0.67, 0.99):
                cap = cs.write_caption([spec], t, 0, words=[u] * 4)
                assert cs.parse_caption(cap) == (spec,), cap


def test_two_shape_captions_round_trip_with_every_joiner():
    a = ShapeSpec("cyan", "triangle", "small", (1, 1))  # "middle" / "centre" must not leak into "top middle"
    b = ShapeSpec("magenta", "circle", "large", (0, 1))
    for j in range(len(cs.JOINERS)):
        for t in range(len(cs.CLAUSES)):
            for u in (0.0, 0.99):
                cap = cs.write_caption([a, b], t, j, words=[u] * 8)
                assert cs.parse_caption(cap) == (a, b), cap


def test_generated_captions_describe_their_images():
    d = cs.captioned_shapes(400, "test", seed=3)
    assert [cs.parse_caption(c) for c in d.captions] == d.shapes


@pytest.mark.parametrize("bad", ["", "   ", "a red circle", "a big red blue circle in the centre",
                                 "a red circle in the centre and also a blue square in the centre; a green box "
                                 "in the middle left"])
def test_captions_outside_the_templates_are_clear_errors(bad):
    with pytest.raises(cs.CaptionError, match="caption"):
        cs.parse_caption(bad)


def test_determinism_slicing_and_split_streams():
    a = cs.captioned_shapes(50, "train", seed=1)
    b = cs.captioned_shapes(50, "train", seed=1)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    tail = cs.captioned_shapes(20, "train", seed=1, start=30)
    assert torch.equal(tail.images, a.images[30:]) and tail.captions == a.captions[30:]
    other = cs.captioned_shapes(50, "test", seed=1)
    assert not torch.equal(other.images, a.images)
    assert not torch.equal(cs.captioned_shapes(50, "train", seed=2).images, a.images)


def test_held_out_pairs_and_test_only_wordings_never_appear_in_training():
    tr = cs.captioned_shapes(3000, "train", seed=0)
    te = cs.captioned_shapes(3000, "test", seed=0)
    pairs_tr = {(s.colour, s.kind) for shapes in tr.shapes for s in shapes}
    assert not pairs_tr & cs.HELD_OUT_PAIRS
    assert len(pairs_tr) == 18 - len(cs.HELD_OUT_PAIRS)
    pairs_te = {(s.colour, s.kind) for shapes in te.shapes for s in shapes}
    assert pairs_te >= cs.HELD_OUT_PAIRS
    assert set(tr.template.tolist()) == set(cs.TRAIN_CLAUSES)
    assert set(te.template.tolist()) == set(range(len(cs.CLAUSES)))
    assert set(tr.joiner[tr.joiner >= 0].tolist()) == set(cs.TRAIN_JOINERS)
    assert 2 in set(te.joiner.tolist())
    assert torch.equal(te.held_out, torch.tensor([cs.is_held_out(s) for s in te.shapes]))
    # about one test shape in six is held out (3 of 18 pairs, first shape uniform)
    assert 0.1 < float(te.held_out.float().mean()) < 0.4
    # two-shape images: different colour and kind, different cells
    for shapes in tr.shapes + te.shapes:
        if len(shapes) == 2:
            a, b = shapes
            assert a.colour != b.colour and a.kind != b.kind and a.position != b.position
    frac_two = float((te.n_shapes == 2).float().mean())
    assert 0.45 < frac_two < 0.55


def test_rendered_pixels_match_the_geometry():
    img = cs.render([ShapeSpec("yellow", "square", "large", (1, 1))], 32)
    # centre 16, half-extent 4: a 9 x 9 square of (255, 255, 0)
    on = img.max(0) > 0
    assert on.sum() == 81 and on[12:21, 12:21].all()
    assert (img[:, 16, 16] == [255, 255, 0]).all()
    tri = cs.render([ShapeSpec("red", "triangle", "small", (0, 0))], 32)[0] > 0
    # centre (5, 5), h = 2: rows widths 1, 1, 3, 3, 5 (apex up)
    assert tri[3:8].sum(1).tolist() == [1, 1, 3, 3, 5] and tri.sum() == 13
    circ = cs.render([ShapeSpec("blue", "circle", "small", (2, 2))], 32)[2] > 0
    yy, xx = np.mgrid[0:32, 0:32]
    assert (circ == ((xx - 27) ** 2 + (yy - 27) ** 2 <= 4)).all()


def test_parser_is_exact_on_every_single_shape_and_many_pairs():
    for spec in all_specs():
        for b in (0.75, 1.0):
            assert cs.parse_image(cs.render([spec], 32, [b])) == [spec]
    specs = all_specs()
    rng = np.random.default_rng(0)
    for _ in range(300):
        a, b = (specs[i] for i in rng.choice(len(specs), 2, replace=False))
        if a.position == b.position:
            continue
        found = cs.parse_image(torch.from_numpy(cs.render([a, b], 32)).float() / 255)
        assert set(found) == {a, b}


def test_parser_at_64_px():
    for spec in all_specs()[::7]:
        assert cs.parse_image(cs.render([spec], 64)) == [spec]


def test_agreement_scores_hand_cases():
    red_c = ShapeSpec("red", "circle", "large", (0, 0))
    blue_s = ShapeSpec("blue", "square", "small", (2, 2))
    swapped = [ShapeSpec("blue", "circle", "large", (0, 0)), ShapeSpec("red", "square", "small", (2, 2))]
    targets = [(red_c, blue_s), (red_c, blue_s), (red_c,), (red_c,)]
    found = [[blue_s, red_c],  # perfect (order does not matter)
             swapped,  # colours bound to the wrong shapes
             [],  # nothing drawn
             [ShapeSpec("red", "circle", "small", (0, 1))]]  # wrong size and cell
    out = cs.agreement(targets, found, held_out=[False, False, True, True])
    # 6 caption shapes: colour right in pair 1 (2) + shape 4 (1) = 3/6; kind 2 + 2 + 0 + 1 = 5/6
    assert out["acc_colour"] == pytest.approx(3 / 6)
    assert out["acc_kind"] == pytest.approx(5 / 6)
    assert out["acc_size"] == pytest.approx(4 / 6)
    assert out["acc_position"] == pytest.approx(4 / 6)
    assert out["acc_count"] == pytest.approx(3 / 4)
    assert out["acc_all"] == pytest.approx(1 / 4)
    assert out["binding"] == pytest.approx(1 / 2)
    assert out["acc_all_seen"] == pytest.approx(1 / 2) and out["acc_all_held_out"] == 0.0
    with pytest.raises(ValueError, match="captions"):
        cs.agreement(targets, found[:2])


def test_class_captions_round_trip_and_templates():
    y = np.arange(200) % 10
    for ds in ("mnist", "cifar10"):
        caps, t = cs.class_captions(y, ds, "train", seed=0)
        assert [cs.parse_class_caption(c, ds) for c in caps] == y.tolist()
        assert set(t.tolist()) == set(range(len(cs.CLASS_TEMPLATES[ds]) - 1))  # test-only template unused
        caps_te, t_te = cs.class_captions(y, ds, "test", seed=0)
        assert len(cs.CLASS_TEMPLATES[ds]) - 1 in set(t_te.tolist())
        assert caps == cs.class_captions(y, ds, "train", seed=0)[0]
    planes = cs.class_captions([0] * 60, "cifar10", "train")[0]
    assert any("an airplane" in c or "an aeroplane" in c for c in planes)
    assert not any(" a airplane" in c or " a aeroplane" in c for c in planes)
    ones = " | ".join(cs.class_captions([1] * 80, "mnist")[0])
    eights = " | ".join(cs.class_captions([8] * 80, "mnist")[0])
    assert "a one" in ones and "an one" not in ones and "an eight" in eights and "a eight" not in eights
    with pytest.raises(ValueError, match="labels"):
        cs.class_captions([10], "mnist")
    with pytest.raises(ValueError, match="class captions"):
        cs.class_captions([1], "faces")


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        cs.captioned_shapes(2, "valid")
    with pytest.raises(ValueError, match="non-negative"):
        cs.captioned_shapes(-1)
    with pytest.raises(ValueError, match="colour"):
        ShapeSpec("pink", "circle", "small", (0, 0))
    with pytest.raises(ValueError, match="RGB"):
        cs.parse_image(np.zeros((32, 32)))
