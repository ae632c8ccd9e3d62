"""``python -m imgprep.processing``: the SageMaker Processing container's entrypoint."""

from imgprep.cli.processing import main

if __name__ == "__main__":
    main()
