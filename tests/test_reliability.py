"""What survives what: datasets are not changed without asking, bad data is named and left out, --resume refuses
what it cannot honour, checkpoints and writers survive crashes and each other, errors come before models load.
Each test reproduces one finding of the reliability issue (it failed before the fix)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from infra import data
from infra.data import PseudoGTDataset
import pseudo_gt
import train
from toy.dataset import write_toy_dataset
from conftest import tiny_args

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def keep_thread_count():
    """train.py --threads sets the process's thread count; give the rest of the session its own back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def count_items(folder: Path) -> int:
    return len(data.read_done(folder))


# 1 ---------------------------------------------------------------- a dataset is not changed without asking

def test_an_existing_dataset_is_used_as_it_is(tiny_models, tiny_dataset, tmp_path):
    data = copy_dataset(tiny_dataset, tmp_path / "data")
    meta = (data / "meta.json").read_bytes()
    with pytest.raises(SystemExit, match="holds a dataset of 16 images"):
        train.main(tiny_args(tiny_models, data, tmp_path / "run", "--phase", "1", "--steps", "1",
                             "--num-images", "32"))
    train.main(tiny_args(tiny_models, data, tmp_path / "run", "--phase", "1", "--steps", "1"))  # no --num-images
    assert count_items(data) == 16 and (data / "meta.json").read_bytes() == meta


def test_the_writer_refuses_other_settings_and_growth_without_extend(tiny_pipe, tiny_dataset, tmp_path):
    data = copy_dataset(tiny_dataset, tmp_path / "data")
    meta = (data / "meta.json").read_bytes()
    sd = json.loads(meta)["sd"]  # the writer records (and enforces) the pipeline it generated with
    preset = pseudo_gt.Preset("toy", sd=sd, size=64, steps=2, guidance=3.0,
                              mask=pseudo_gt.MaskConfig(cross_res=(16, 8), self_res=16, refine=False))
    other = pseudo_gt.replace(preset, steps=3)
    with pytest.raises(ValueError, match="steps: dataset 2, asked 3"):
        pseudo_gt.write_dataset(data, other, 16, pipe=tiny_pipe, use_nltk=False)
    with pytest.raises(ValueError, match="pass --extend"):
        pseudo_gt.write_dataset(data, preset, 18, pipe=tiny_pipe, use_nltk=False)
    assert (data / "meta.json").read_bytes() == meta and count_items(data) == 16
    stats = pseudo_gt.write_dataset(data, preset, 18, pipe=tiny_pipe, use_nltk=False, extend=True)
    assert stats["written"] == 2 and json.loads((data / "meta.json").read_text())["num_images"] == 18


# 2 ---------------------------------------------------------------- --resume

def test_resume_takes_a_new_learning_rate_and_refuses_a_new_batch_size(tiny_models, tiny_dataset, tmp_path):
    run = tmp_path / "run"
    train.main(tiny_args(tiny_models, tiny_dataset, run, "--phase", "1", "--steps", "2", "--lr-slots1", "1e-3"))
    train.main(tiny_args(tiny_models, tiny_dataset, run, "--phase", "1", "--steps", "3", "--lr-slots1", "1e-7",
                         "--resume"))
    state = torch.load(run / "phase1" / "train_state.pt", weights_only=True)
    assert state["step"] == 3 and state["optimizer"]["param_groups"][0]["base_lr"] == 1e-7
    with pytest.raises(SystemExit, match="batch_size 4 → 2"):
        train.main(tiny_args(tiny_models, tiny_dataset, run, "--phase", "1", "--steps", "4", "--resume",
                             "--batch-size", "2"))


# 3 ---------------------------------------------------------------- non-finite values

def test_non_finite_values_stop_with_a_true_message(tiny_models, tiny_dataset, tmp_path, monkeypatch):
    import glass
    run = tmp_path / "run"
    real = glass.FrozenEncoder.forward
    monkeypatch.setattr(glass.FrozenEncoder, "forward", lambda self, x: real(self, x) * float("nan"))
    with pytest.raises(SystemExit, match="non-finite values at step 0.*no checkpoint of this phase exists yet"):
        train.main(tiny_args(tiny_models, tiny_dataset, run, "--phase", "1", "--steps", "2"))
    monkeypatch.setattr(glass.FrozenEncoder, "forward", real)
    train.main(tiny_args(tiny_models, tiny_dataset, run, "--phase", "1", "--steps", "2"))
    monkeypatch.setattr(glass.FrozenEncoder, "forward", lambda self, x: real(self, x) * float("nan"))
    with pytest.raises(SystemExit, match=r"step 2\), is intact: continue with --resume"):
        train.main(tiny_args(tiny_models, tiny_dataset, run, "--phase", "1", "--steps", "4", "--resume"))


# 4 ---------------------------------------------------------------- bad data is named, left out and repaired

def spoil(data: Path) -> None:
    """One truncated PNG, one wrong-size PNG, a JSON line without the keys and a line that is not UTF-8."""
    img = data / "images" / "0000003.png"
    img.write_bytes(img.read_bytes()[:60])
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(data / "masks" / "0000005.png")
    with open(data / "items-rank0.jsonl", "ab") as f:
        f.write(b'{"note": "not an item"}\n\xff\xfe garbage\n')


def test_bad_items_are_named_and_left_out_and_training_runs(tiny_models, tiny_dataset, tmp_path, capsys):
    data = copy_dataset(tiny_dataset, tmp_path / "data")
    spoil(data)
    ds = PseudoGTDataset(data)
    assert len(ds) == 14 and ds.unreadable_lines == 2
    assert sorted(ds.bad) == [3, 5] and "images/0000003.png" in ds.bad[3] and "32×32, not 64×64" in ds.bad[5]
    assert "left out 2 bad items and 2 unreadable lines" in capsys.readouterr().out
    train.main(tiny_args(tiny_models, data, tmp_path / "run", "--phase", "1", "--steps", "2"))
    report = train.main(tiny_args(tiny_models, data, tmp_path / "run", "--check-data"))
    assert set(report["bad"]) == {3, 5} and report["unreadable_lines"] == 2


def test_repair_rewrites_bad_items_from_their_seeds(tmp_path):
    write_toy_dataset(tmp_path / "data", 3, train.options().model.sd)  # the shipped toy models, 3 images
    path = tmp_path / "data" / "images" / "0000001.png"
    good = np.asarray(Image.open(path)).astype(int)
    path.write_bytes(path.read_bytes()[:50])
    report = train.run(train.options(data=str(tmp_path / "data"), out=str(tmp_path / "run"), check_data=True,
                                     repair_data=True))
    assert list(report["bad"]) == [1] and report["repaired"]
    again = np.asarray(Image.open(path)).astype(int)  # generated alone now, in a batch of 3 before: ±1 at most
    assert np.abs(again - good).max() <= 2 and np.abs(again - good).mean() < 0.05


# 5 ---------------------------------------------------------------- a crash inside the checkpoint swap

@pytest.mark.parametrize("tmp_whole", [True, False])
def test_a_crash_between_the_renames_of_the_swap_is_recovered(tiny_models, tiny_dataset, tmp_path, tmp_whole):
    run = tmp_path / "run"
    train.main(tiny_args(tiny_models, tiny_dataset, run, "--phase", "1", "--steps", "2"))
    ckpt = run / "phase1"
    weights = load_file(ckpt / "model.safetensors")
    # the state a crash after `folder.rename(old)` leaves: no folder, the old one and the new temporary one
    shutil.copytree(ckpt, run / "phase1.tmp")
    if not tmp_whole:
        (run / "phase1.tmp" / "train_state.pt").unlink()
    ckpt.rename(run / "phase1.old")
    train.main(tiny_args(tiny_models, tiny_dataset, run, "--phase", "1", "--steps", "3", "--resume"))
    assert json.loads((ckpt / "config.json").read_text())["step"] == 3, "resumed at step 2, not from scratch"
    assert not (run / "phase1.old").exists() and not (run / "phase1.tmp").exists()
    assert any(not torch.equal(weights[k], v) for k, v in load_file(ckpt / "model.safetensors").items())


# 6 ---------------------------------------------------------------- two writers

def test_a_second_writer_is_refused_and_a_dead_writers_lock_is_no_obstacle(tiny_pipe, tmp_path):
    import fcntl
    preset = pseudo_gt.Preset("toy", sd="unused", size=64, steps=2, guidance=1.0,
                              mask=pseudo_gt.MaskConfig(cross_res=(16,), self_res=16, refine=False))
    out = tmp_path / "data"
    out.mkdir()
    with open(out / ".writer-rank0.lock", "a") as held:  # a live writer holds the lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RuntimeError, match="another writer"):
            pseudo_gt.write_dataset(out, preset, 2, pipe=tiny_pipe, use_nltk=False)
    assert count_items(out) == 0
    # a writer killed with -9 leaves its lock file behind, but not the lock
    code = ("import sys, os, fcntl; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
            "os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code, str(out / ".writer-rank0.lock")])
    assert (out / ".writer-rank0.lock").exists()
    assert pseudo_gt.write_dataset(out, preset, 2, pipe=tiny_pipe, use_nltk=False)["written"] == 2


def test_concurrent_png_writes_never_collide(tmp_path):
    code = ("import sys, numpy as np; sys.path.insert(0, %r); from infra import data\n"
            "for i in range(150): data.save_png_atomic(np.full((32, 32), i %% 255, np.uint8), "
            "__import__('pathlib').Path(%r))") % (str(ROOT), str(tmp_path / "same.png"))
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert Image.open(tmp_path / "same.png").size == (32, 32) and not list(tmp_path.glob("*.tmp"))


# 7 ---------------------------------------------------------------- --images with the toy captioner

def test_an_image_folder_is_read_lazily_and_captioned_by_the_toy_captioner(tiny_pipe, tmp_path):
    from toy.world import make_scene
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        Image.fromarray(make_scene("val", i).image).save(src / f"{i}.png")
    (src / "broken.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="broken.png"):
        paths, skipped = data.load_image_sources(src)
    assert [p.name for p in paths] == ["0.png", "1.png", "2.png"] and skipped == 1  # paths, not decoded images
    preset = pseudo_gt.Preset("toy", sd="unused", size=64, steps=2, guidance=1.0,
                              mask=pseudo_gt.MaskConfig(cross_res=(16,), self_res=16, refine=False))
    with pytest.warns(UserWarning, match="broken.png"):
        stats = pseudo_gt.write_dataset(tmp_path / "out", preset, None, pipe=tiny_pipe, images_dir=src,
                                        use_nltk=False)
    assert stats["written"] == 3 and stats["skipped_images"] == 1
    records = [json.loads(line) for line in (tmp_path / "out" / "items-rank0.jsonl").read_text().splitlines()]
    from toy.models import DEFAULT_OUT, load_classifier
    from toy.world import CLASSES, ToyScenes
    clf = load_classifier(DEFAULT_OUT)
    seen = clf(torch.stack([ToyScenes("val")[i]["image"] for i in range(3)])).sigmoid() > 0.5  # (3, C)
    named = [set(r["classes"]) for r in records]
    assert named == [{c for c, yes in zip(CLASSES, row) if yes} for row in seen.tolist()]  # what the classifier sees
    assert all(n and n <= set(make_scene("val", i).classes) for i, n in enumerate(named))  # and it is in the scene


# 8 ---------------------------------------------------------------- determinism, thread count recorded

def test_the_same_command_twice_gives_identical_weights_and_records_its_threads(tiny_models, tiny_dataset, tmp_path):
    for name in ("a", "b"):
        train.main(tiny_args(tiny_models, tiny_dataset, tmp_path / name, "--phase", "1", "--steps", "3"))
    a, b = (load_file(tmp_path / n / "phase1" / "model.safetensors") for n in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    info = json.loads((tmp_path / "a" / "phase1" / "config.json").read_text())
    assert info["versions"]["threads"] == torch.get_num_threads() and info["world"] == 1


# 9 ---------------------------------------------------------------- argument errors come first

@pytest.mark.parametrize("flag", [["--num-slots", "0"], ["--batch-size", "0"], ["--lr-slots1", "-1"],
                                  ["--steps", "-3"]])
def test_bad_arguments_fail_before_any_model_loads(flag, monkeypatch, capsys):
    import glass
    monkeypatch.setattr(glass, "GLASS", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(SystemExit) as e:
        train.main(flag)
    assert e.value.code == 2 and flag[0] in capsys.readouterr().err


# kill -9 inside the writer and inside training (subprocesses), then the same command again

def run_child(code: str) -> int:
    """Run `code` in a fresh Python that imports the project; returns its exit code (-9: killed)."""
    return subprocess.run([sys.executable, "-c", f"import sys; sys.path[:0] = [{str(ROOT)!r}]\n" + code],
                          capture_output=True, text=True, timeout=600).returncode


@pytest.mark.parametrize("where", ["mid_png", "before_record"])
def test_writer_killed_with_sigkill_then_rerun_writes_what_an_uninterrupted_run_writes(tiny_models, tiny_pipe,
                                                                                       tmp_path, where):
    preset_code = (f"pg.Preset('toy', sd={str(tiny_models / 'sd')!r}, size=64, steps=2, guidance=3.0, "
                   f"mask=pg.MaskConfig(cross_res=(16, 8), self_res=16, refine=False))")
    kill = {"mid_png": "    if n[0] == 5: Image.fromarray(array).save(str(path) + '.%d.tmp' % os.getpid(), format='PNG'); "
                       "os.kill(os.getpid(), 9)\n",
            "before_record": "    if n[0] == 6: os.kill(os.getpid(), 9)\n"}[where]
    code = ("import os\nfrom pathlib import Path\nfrom PIL import Image\nimport pseudo_gt as pg\nfrom infra import data\n"
            "real, n = data.save_png_atomic, [0]\n"
            "def dying(array, path):\n    n[0] += 1\n" + kill + "    real(array, path)\n"
            "data.save_png_atomic = dying\n"
            f"pg.write_dataset(Path({str(tmp_path / 'crashed')!r}), {preset_code}, 6, "
            f"pipe=pg.load_pipeline({str(tiny_models / 'sd')!r}), batch_size=2, use_nltk=False)\n")
    assert run_child(code) == -9
    preset = eval(preset_code, {"pg": pseudo_gt})
    pseudo_gt.write_dataset(tmp_path / "crashed", preset, 6, pipe=tiny_pipe, batch_size=2, use_nltk=False)
    pseudo_gt.write_dataset(tmp_path / "clean", preset, 6, pipe=tiny_pipe, batch_size=2, use_nltk=False)
    a, b = PseudoGTDataset(tmp_path / "crashed"), PseudoGTDataset(tmp_path / "clean")
    assert len(a) == len(b) == 6 and not a.bad
    for i in range(6):
        assert torch.equal(a[i]["image"], b[i]["image"]) and torch.equal(a[i]["mask"], b[i]["mask"])


@pytest.mark.parametrize("where", ["inside_the_swap", "mid_step"])
def test_training_killed_with_sigkill_then_resumed_ends_with_the_uninterrupted_weights(tiny_models, tiny_dataset,
                                                                                       tmp_path, where):
    flags = ["--phase", "1", "--steps", "5", "--ckpt-every", "1", "--threads", "1"]
    kill = {"inside_the_swap": ("real = train.save_checkpoint\n"
                                "def dying(folder, model, opt, phase, step, args, rng):\n"
                                "    if step == 3:\n"
                                "        folder.rename(folder.with_name(folder.name + '.old'))\n"
                                "        os.kill(os.getpid(), 9)\n"
                                "    real(folder, model, opt, phase, step, args, rng)\n"
                                "train.save_checkpoint = dying\n"),
            "mid_step": ("import glass\nreal, n = glass.GLASS.losses, [0]\n"
                         "def dying(self, batch, generator=None):\n"
                         "    n[0] += 1\n"
                         "    if n[0] == 4: os.kill(os.getpid(), 9)\n"
                         "    return real(self, batch, generator)\n"
                         "glass.GLASS.losses = dying\n")}[where]
    args = tiny_args(tiny_models, tiny_dataset, tmp_path / "killed", *flags)
    assert run_child(f"import os, torch\ntorch.set_num_threads(1)\nimport train\n{kill}train.main({args!r})") == -9
    train.main(tiny_args(tiny_models, tiny_dataset, tmp_path / "killed", *flags, "--resume"))
    train.main(tiny_args(tiny_models, tiny_dataset, tmp_path / "clean", *flags))
    a = load_file(tmp_path / "killed" / "phase1" / "model.safetensors")
    b = load_file(tmp_path / "clean" / "phase1" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
