#!/usr/bin/env bash
# Regenerates the encoded samples the media tests classify: twelve 64x64
# frames per codec from real encoders, a keyframe every five frames, and
# next to each sample a .keys file with one character per frame in decode
# order, K for what ffprobe flags as a keyframe and - otherwise (the tests'
# oracle). Needs ffmpeg with libx264, libx265, libaom, libsvtav1, libvpx.
set -euo pipefail
cd "$(dirname "$0")"

src=(-f lavfi -i testsrc2=size=64x64:rate=25 -frames:v 12)
enc() { ffmpeg -hide_banner -loglevel error -y "${src[@]}" "$@"; }

# AVC and HEVC as Annex B with access unit delimiters, two B-frames; x265's
# open GOPs make the later keyframes CRA pictures, the first one IDR.
enc -pix_fmt yuv420p -c:v libx264 -profile:v high \
  -x264-params keyint=5:min-keyint=5:scenecut=0:aud=1:bframes=2 avc.h264
enc -pix_fmt yuv420p -c:v libx265 \
  -x265-params keyint=5:min-keyint=5:scenecut=0:aud=1:bframes=2:log-level=error hevc.hevc
# AV1 as a low-overhead OBU stream (one temporal unit per frame, with
# hidden frames shown later by show_existing_frame).
enc -pix_fmt yuv420p -c:v libaom-av1 -cpu-used 8 -g 5 -keyint_min 5 -b:v 100k -f obu av1-aom.obu
enc -pix_fmt yuv420p -c:v libsvtav1 -g 5 -preset 12 -f obu av1-svt.obu 2>/dev/null
# VP9 in IVF: profile 0 (with superframes) and profile 3 (4:4:4, 12 bits).
enc -pix_fmt yuv420p -c:v libvpx-vp9 -g 5 -keyint_min 5 -b:v 100k -deadline good -cpu-used 8 vp9.ivf
enc -pix_fmt yuv444p12le -c:v libvpx-vp9 -g 5 -keyint_min 5 -b:v 100k -deadline good -cpu-used 8 vp9-profile3.ivf

for f in avc.h264 hevc.hevc av1-aom.obu av1-svt.obu vp9.ivf vp9-profile3.ivf; do
  ffprobe -v error -show_entries packet=flags -of csv=p=0 "$f" |
    awk '{ printf "%s", (substr($0, 1, 1) == "K" ? "K" : "-") } END { print "" }' >"$f.keys"
done
