from imgprep.cli.main import main

main()
