from resetrl.stages import main

main()
