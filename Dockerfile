# The imgprep SageMaker Processing image: `python -m imgprep.processing` is the entrypoint.
#
#   docker build -t imgprep .
#   docker run --rm imgprep --help
#
# Two stages: the native libjpeg-turbo core is compiled against libturbojpeg0-dev and
# libjpeg62-turbo-dev (the training reader's crop decode) in the builder; the runtime stage carries
# only the shared libraries (libturbojpeg0, libjpeg62-turbo) and the wheel.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libturbojpeg0-dev libjpeg62-turbo-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY setup.py pyproject.toml README.md* ./
COPY native ./native
COPY imgprep ./imgprep
RUN IMGPREP_FORCE_NATIVE=1 pip wheel --no-cache-dir --no-deps -w /wheels .

FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libturbojpeg0 libjpeg62-turbo \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN WHEEL="$(ls /wheels/imgprep-*.whl)" \
 && pip install --no-cache-dir "${WHEEL}" \
 && rm -rf /wheels \
 && python -c "import imgprep.processing, imgprep._native, boto3, PIL"
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["python", "-m", "imgprep.processing"]
