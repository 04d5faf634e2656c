"""What one proof-of-delivery photo costs the server, beside a bare decode of it.

    .venv/bin/python -m bench.pod_media            # 12 MP and 3 MP photos, 7 rounds each
    .venv/bin/python -m bench.pod_media --quick    # 3 rounds, well inside a minute

The photos are made here: camera-like JPEGs (quality 92, smooth gradients plus sensor
noise, so they compress like real ones: a few MB for 12 MP) with EXIF and GPS.

* ``decode``: the baseline. ``Image.open`` + ``load``: what any server that looks at
  the pixels at all must pay.
* ``check_image``: what the upload API does (apps/pod/media.py): the byte and pixel
  checks, a full decode with bomb warnings as errors, orientation, the 1600 px display
  copy and the 320 px thumbnail re-encoded without metadata, and the SHA-256.

Each figure is the best of its rounds (the machine may be shared: the best round is
the one least disturbed). The last line is the headline.
"""

from __future__ import annotations

import argparse
import io
import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from PIL import ExifTags, Image  # noqa: E402

from apps.pod.media import check_image  # noqa: E402


def camera_jpeg(width: int, height: int) -> bytes:
    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 24)
    image = Image.merge("RGB", (gradient, Image.blend(gradient, noise, 0.35), noise))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 44.4)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def best_ms(func, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    headline = []
    for label, (w, h) in (("12 MP", (4000, 3000)), ("3 MP", (2000, 1500))):
        data = camera_jpeg(w, h)

        def decode(data: bytes = data) -> None:
            with Image.open(io.BytesIO(data)) as image:
                image.load()

        base = best_ms(decode, rounds)
        full = best_ms(lambda data=data: check_image(data, kind="photo"), rounds)
        print(f"{label} photo ({len(data) / 1e6:.1f} MB): decode {base:.0f} ms, check_image {full:.0f} ms "
              f"({full / base:.1f} x decode)")
        headline.append(f"{label}: {full:.0f} ms ({full / base:.1f} x a bare decode)")
    print("POD photo upload processing, best round: " + "; ".join(headline))


if __name__ == "__main__":
    main()
