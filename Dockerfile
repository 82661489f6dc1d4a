# The GPU training image for TrainingSettings(execution="pipes_ecs"): the task runs
# `python -m ifir_pipeline.train_entry`, which reads its inputs from S3, trains on the task's GPUs and writes the
# checkpoint back to S3 (see ifir_pipeline/deploy/README.md). No secrets in the image: the task role grants S3.
#
#   docker build -t ifir-train:latest .
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t ifir-train:latest .
FROM python:3.11-slim-bookworm

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false

# the CUDA build of the pinned torch first (it carries its CUDA runtime; the GPU AMI provides the driver), then
# the project, which keeps that torch
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"

WORKDIR /opt/ifir
COPY pyproject.toml README.md ./
COPY ifir_pipeline ./ifir_pipeline
RUN pip install . && python -c "import ifir_pipeline.train_entry, torch; print('torch', torch.__version__)"

# run as an unprivileged user; caches (Hugging Face, temporary checkpoints) live in its home
RUN useradd --create-home --uid 10001 ifir
USER ifir
ENV HOME=/home/ifir HF_HOME=/home/ifir/.cache/huggingface
WORKDIR /home/ifir

# CMD, not ENTRYPOINT: the ECS task override names the same command and must replace it, not append to it
CMD ["python", "-m", "ifir_pipeline.train_entry"]
