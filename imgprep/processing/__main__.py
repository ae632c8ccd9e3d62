"""``python -m imgprep.processing``: the SageMaker Processing container's entrypoint."""

from imgprep.processing.command import main

if __name__ == "__main__":
    main()
