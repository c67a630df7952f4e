"""Pack and unpack the corpus tree as one reproducible ``runs.tar.xz``.

Members are sorted, with fixed mtimes, owners and modes, so the same tree always packs to
the same bytes.  Tests and scripts call ``extract(dest)`` and get the corpus root (the folder
holding ``runs/``), to which every label's ``run`` path is relative.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

ARCHIVE = Path(__file__).with_name("runs.tar.xz")
LABELS = Path(__file__).with_name("labels.json")
MTIME = 1_704_067_200  # 2024-01-01, for every member


def _info(name: str, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size = size
    return info


def pack(root: Path, archive: Path = ARCHIVE) -> Path:
    """Pack ``root/runs`` (paths relative to root) into ``archive``."""
    paths = sorted(p for p in (root / "runs").rglob("*"))
    with tarfile.open(archive, "w:xz", format=tarfile.GNU_FORMAT, preset=9) as tar:
        tar.addfile(_info("runs", directory=True))
        for path in paths:
            name = path.relative_to(root).as_posix()
            if path.is_dir():
                tar.addfile(_info(name, directory=True))
            else:
                blob = path.read_bytes()
                tar.addfile(_info(name, size=len(blob)), io.BytesIO(blob))
    return archive


def extract(dest: Path | str, archive: Path = ARCHIVE) -> Path:
    """Unpack the corpus into ``dest`` and return ``dest`` (label paths are relative to it)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:xz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # Python < 3.12: the archive is ours, members are plain files and folders
            tar.extractall(dest)
    return dest


def member_bytes(prefix: str, archive: Path = ARCHIVE) -> dict[str, bytes]:
    """The files under ``prefix`` in the archive, by member name (for determinism checks)."""
    out = {}
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None and member.name.startswith(prefix):
                out[member.name] = handle.read()
    return out
