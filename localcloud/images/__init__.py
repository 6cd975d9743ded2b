"""Image environments: the Python and packages of a training image, so jobs run with them."""
