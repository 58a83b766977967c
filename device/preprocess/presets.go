package preprocess

// FashionMNIST returns the Spec of a Fashion-MNIST classifier: 28x28 gray, normalised with
// the mean and standard deviation of the training set.
//
// The constants were computed once over every pixel of the 60,000 training images
// (fashion-mnist/train-images-idx3-ubyte.gz in the shared data folder), scaled to [0,1]:
// mean 0.28604, population standard deviation 0.35302, rounded to 4 decimals.
// TestFashionMNISTConstants recomputes them when OODGUARD_DATA is set.
func FashionMNIST() Spec {
	return Spec{
		Width: 28, Height: 28, Channels: 1, Resize: ResizeStretch, Layout: LayoutNCHW,
		Mean: []float32{0.2860},
		Std:  []float32{0.3530},
	}
}

// CIFAR10 returns the Spec of a CIFAR-10 classifier: 32x32 RGB, normalised with the
// per-channel mean (125.3, 123.0, 113.9)/255 and std (63.0, 62.1, 66.7)/255 that the
// Unleashing Mask code (and the Energy-based OOD code it builds on) uses.
func CIFAR10() Spec {
	return Spec{
		Width: 32, Height: 32, Channels: 3, Resize: ResizeStretch, Layout: LayoutNCHW,
		Mean: []float32{125.3 / 255, 123.0 / 255, 113.9 / 255},
		Std:  []float32{63.0 / 255, 62.1 / 255, 66.7 / 255},
	}
}

// CIFAR10Raw returns the Spec of a CIFAR-10 classifier that normalises its input itself, as the
// Unleashing Mask code's DenseNet-BC does (method doc §1.1): 32x32 RGB, pixels scaled to [0,1],
// no mean or std applied outside the model.
func CIFAR10Raw() Spec {
	return Spec{
		Width: 32, Height: 32, Channels: 3, Resize: ResizeStretch, Layout: LayoutNCHW,
		Mean: []float32{0, 0, 0},
		Std:  []float32{1, 1, 1},
	}
}
