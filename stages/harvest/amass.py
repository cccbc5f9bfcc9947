"""AMASS: motion .npz files (files, folders, globs) posed with the body model the job names (`body_model`: one
.npz for every motion, or a folder with one per gender). Each motion is stored as an AMASS package (its arrays,
sha256, and the body model's path + sha256); the licensed body model is never copied into the job's output."""

from __future__ import annotations

import os
import threading

from stages.evaluate import AssetError, Limits
from stages.formats.amass import amass_package, check_fits, read_motion
from stages.formats.body_model import BodyModel, BodyModelError, load_body_model
from stages.harvest.item import FetchError
from stages.harvest.local import resolve
from stages.harvest.source_files import file_items

# motion files in AMASS folders (SMPL-H "_poses", SMPL-X "_stageii"); the subjects' shape.npz are not motions
MOTION_SUFFIXES = ("_poses.npz", "_stageii.npz")
# where a body-model folder keeps each gender's model: AMASS / human_body_prior, then smplx's naming
GENDER_FILES = ("{gender}/model.npz", "SMPLH_{GENDER}.npz", "SMPLX_{GENDER}.npz", "SMPL_{GENDER}.npz")


def body_model_file(body_model: str, gender: str) -> str:
    """The body-model file for `gender`: `body_model` itself when it is a file, else the first match in the folder."""
    if not os.path.isdir(body_model):
        return body_model
    for pattern in GENDER_FILES:
        candidate = os.path.join(body_model, pattern.format(gender=gender, GENDER=gender.upper()))
        if os.path.isfile(candidate):
            return candidate
    looked = ", ".join(p.format(gender=gender, GENDER=gender.upper()) for p in GENDER_FILES)
    raise BodyModelError(f"{body_model}: no body model for gender {gender!r} (looked for {looked})")


class BodyModels:
    """Body models of one source, loaded and validated once per file."""

    def __init__(self, body_model: str):
        self.root = body_model
        self.models: dict[str, BodyModel | BodyModelError] = {}
        self.lock = threading.Lock()  # fetch threads share it; each file is read once

    def get(self, gender: str) -> tuple[str, BodyModel]:
        try:
            path = os.path.abspath(body_model_file(self.root, gender))
        except BodyModelError as exc:
            raise FetchError("body-model", str(exc)) from None
        with self.lock:
            if path not in self.models:
                try:
                    self.models[path] = load_body_model(path)
                except BodyModelError as exc:
                    self.models[path] = exc
            model = self.models[path]
        if isinstance(model, BodyModelError):
            raise FetchError("body-model", str(model))
        return path, model


def list_items(source, config, base_dir: str):
    body_model, _ = resolve(source.body_model, base_dir)
    models = BodyModels(body_model)
    limits = Limits(max_file_bytes=config.max_asset_bytes)

    def package(path: str, data: bytes) -> tuple[bytes, str]:
        try:
            motion = read_motion(data, path, limits)
            model_path, model = models.get(motion.gender)
            check_fits(motion, model, path)
        except AssetError as exc:
            raise FetchError(exc.kind, str(exc)) from None
        return amass_package(data, motion, model_path, model.sha256), "amass"

    return file_items(source, config, base_dir, MOTION_SUFFIXES, package, license=source.license,
                      attribution=source.attribution, tags=("human", "motion capture"))
