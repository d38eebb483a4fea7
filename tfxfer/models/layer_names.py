"""Names of the layers every tfxfer model has, so freezing, training and export find them."""

INPUTS = "images"
AUGMENTATION = "augmentation"
PREPROCESSING = "preprocessing"
BACKBONE = "backbone"
POOLER = "pooler"
DROPOUT = "dropout"
PREDICTIONS = "predictions"
