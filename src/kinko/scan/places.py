"""Where a finding is, in non-secret terms: the file on disk (or archive) and the object inside it."""

from __future__ import annotations

from kinko.scan.interface import FileStatus, Location


def in_image(location: Location) -> bool:
    """A file (or config entry) inside an image archive: its path names nothing on the scanning host."""
    return (
        location.layer_index is not None
        or location.layer_diff_id is not None
        or location.status is not FileStatus.NOT_APPLICABLE
        or location.path.startswith("config:")
    )


def file_and_object(location: Location) -> tuple[str, str | None]:
    """(the file on disk the finding is in, relative to the scan root; what inside it, or None).

    `Location.path` mixes both for manifests (`deploy/x.yaml:Secret/ns/n:data.k`, or `Secret/ns/n:data.k` with
    the file as the artifact) and names a file inside the archive for images. The object is the Kubernetes
    object path for manifests and the in-image path (or `config:` entry) for images.
    """
    if in_image(location):
        return location.artifact, location.path
    ref, path = location.object_ref, location.path
    if ref:
        at = path.find(ref + ":")
        if at == 0:
            return location.artifact, path
        if at > 0 and path[at - 1] == ":":
            return path[: at - 1], path[at:]
    return path, None


def file_key(location: Location) -> str:
    """The file a baseline entry is bound to: the archive plus the in-image path for images, else the file.

    A manifest's object is left out (renaming a Secret does not make its value new); an image's in-image path is
    kept, since the archive alone would let a known secret move anywhere inside it.
    """
    file, obj = file_and_object(location)
    return f"{file}\0{obj}" if in_image(location) else file
