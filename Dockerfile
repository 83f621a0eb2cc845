# clipbridge service image. Build and run with docker-compose.yml (`docker-compose up -d --build`).
# FFmpeg comes from the imageio-ffmpeg wheel (a static binary), so no system ffmpeg is installed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid/gid so that bind mounts and volumes can be given to it on the host.
RUN groupadd --system --gid 10001 clipbridge \
    && useradd --system --uid 10001 --gid clipbridge --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin clipbridge

WORKDIR /app

# The package first (README.md is the package's readme), then the config: editing config.yaml does not reinstall.
COPY pyproject.toml README.md ./
COPY clipbridge ./clipbridge
RUN pip install ".[postgres,s3]" \
    && python -c "import imageio_ffmpeg, os, sys; exe = imageio_ffmpeg.get_ffmpeg_exe(); print('ffmpeg:', exe); sys.exit(0 if os.access(exe, os.X_OK) else 1)" \
    && rm -rf /app/clipbridge /app/build /app/*.egg-info

COPY config.yaml ./config.yaml

# /data holds the job store, clips and annotations (a named volume in docker-compose.yml starts as a copy of
# this folder, so it is writable by the service user); /recordings is where the recorder's segments are mounted.
RUN mkdir -p /data/db /data/videos /data/annotations /recordings \
    && chown -R clipbridge:clipbridge /data

USER clipbridge
VOLUME ["/data"]
EXPOSE 8080

# /health answers 503 when a component is down (broker unreachable, store or output folder not writable).
# The slim image has no curl: ask with Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status == 200 else 1)"]

# Settings come from /app/config.yaml overridden by CLIPBRIDGE__SECTION__KEY variables (see docker-compose.yml).
CMD ["clipbridge", "--config", "/app/config.yaml", "run"]
