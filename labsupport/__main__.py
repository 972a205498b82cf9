from labsupport.cli import main

main()
