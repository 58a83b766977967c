package main

import (
	"fmt"
	"sort"
	"strings"
)

// Dataset keys, also the folder names under the output folder.
const (
	fashionKey = "fashion-mnist"
	cifarKey   = "cifar10"
)

// Mode is one size of the reproduction: models, data subsets and epochs for both datasets.
type Mode struct {
	Name  string   `json:"name"`
	What  string   `json:"what"`
	Seeds []uint64 `json:"seeds"`
	Sets  []Setup  `json:"datasets"`
}

// Setup is the recipe for one ID dataset.
type Setup struct {
	Key   string `json:"key"`
	Title string `json:"title"`

	Arch   string `json:"arch"`
	Width  int    `json:"width"`
	Blocks string `json:"blocks,omitempty"` // resnet only

	// Data sizes. Fashion-MNIST counts images; CIFAR-10 counts images per class (its folders
	// are read in class order, so subsets are taken per class).
	Train   int `json:"train"`    // training images (Fashion: first N of the 55k split; CIFAR: first N per class)
	IDVal   int `json:"id_val"`   // held-out training images used as the ID validation set (CIFAR: per class)
	OODVal  int `json:"ood_val"`  // validation OOD images (first N of the validation half)
	IDTest  int `json:"id_test"`  // 0: the whole ID test set; else a subset (CIFAR: per class)
	OODTest int `json:"ood_test"` // images of each test OOD half (at most 5000)

	Epochs int     `json:"epochs"`
	Batch  int     `json:"batch"`
	LR     float64 `json:"lr"`

	// BestMaxAccDrop: the best intermediate epoch is chosen among the epochs whose ID
	// validation accuracy is at most this many points below the final epoch's.
	BestMaxAccDrop float64 `json:"best_max_acc_drop_points"`

	UM   Unleash `json:"um"`
	UMAP Unleash `json:"umap"`
}

// Unleash is the recipe of one `oodguard unleash` run.
type Unleash struct {
	Epochs      int     `json:"epochs"`
	LR          float64 `json:"lr"`
	Batch       int     `json:"batch"`
	Limit       int     `json:"limit"` // a random N of the training images, seeded (Fashion only; 0: all)
	GridFactors string  `json:"grid_factors"`
	GridEpochs  int     `json:"grid_epochs"`
	Keep        float64 `json:"keep,omitempty"`       // umap
	ScoreInit   string  `json:"score_init,omitempty"` // umap
}

// modes are the sizes of this driver (`make reproduce REPRODUCE=smoke|short|full`; make
// reproduce's own default is the memorisation regime, scripts/memorisation/regime.sh). short
// (called "default" before 2026-12-06, still accepted) finishes within an hour on a 2-core
// machine (about 21 minutes measured); see docs/reproduce.md for the timings behind it.
var modes = map[string]Mode{
	"smoke": {
		Name: "smoke", What: "a few hundred images, 1-2 epochs: checks that every step runs (numbers mean nothing)",
		Seeds: []uint64{1},
		Sets: []Setup{
			{
				Key: fashionKey, Title: "Fashion-MNIST (ID) vs MNIST", Arch: "cnn28", Width: 8,
				Train: 1024, IDVal: 300, OODVal: 300, IDTest: 500, OODTest: 300,
				Epochs: 2, Batch: 128, LR: 0.1, BestMaxAccDrop: 5,
				UM:   Unleash{Epochs: 1, LR: 0.01, Batch: 128, GridFactors: "0.5,1", GridEpochs: 1},
				UMAP: Unleash{Epochs: 1, LR: 0.1, Batch: 128, GridFactors: "0.5,1", GridEpochs: 1, Keep: 0.8, ScoreInit: "magnitude"},
			},
			{
				Key: cifarKey, Title: "CIFAR-10 (ID) vs Tiny ImageNet", Arch: "resnet", Width: 8, Blocks: "1",
				Train: 40, IDVal: 20, OODVal: 200, IDTest: 30, OODTest: 300,
				Epochs: 2, Batch: 64, LR: 0.1, BestMaxAccDrop: 5,
				UM:   Unleash{Epochs: 1, LR: 0.01, Batch: 64, GridFactors: "1", GridEpochs: 1},
				UMAP: Unleash{Epochs: 1, LR: 0.1, Batch: 64, GridFactors: "1", GridEpochs: 1, Keep: 0.8, ScoreInit: "magnitude"},
			},
		},
	},
	"short": {
		Name: "short", What: "about 20 minutes on 2 CPU cores: small models, a CIFAR-10 subset, short schedules, one seed",
		Seeds: []uint64{1},
		Sets: []Setup{
			{
				Key: fashionKey, Title: "Fashion-MNIST (ID) vs MNIST", Arch: "cnn28", Width: 16,
				Train: 55000, IDVal: 5000, OODVal: 5000, OODTest: 5000,
				Epochs: 10, Batch: 128, LR: 0.1, BestMaxAccDrop: 5,
				UM:   Unleash{Epochs: 3, LR: 0.01, Batch: 128, Limit: 20000, GridFactors: "0.5,0.75,1", GridEpochs: 3},
				UMAP: Unleash{Epochs: 3, LR: 0.1, Batch: 128, Limit: 20000, GridFactors: "0.5,0.75,1", GridEpochs: 3, Keep: 0.8, ScoreInit: "magnitude"},
			},
			{
				Key: cifarKey, Title: "CIFAR-10 (ID) vs Tiny ImageNet", Arch: "resnet", Width: 16, Blocks: "1",
				Train: 1000, IDVal: 200, OODVal: 2000, OODTest: 5000,
				Epochs: 15, Batch: 128, LR: 0.1, BestMaxAccDrop: 5,
				UM:   Unleash{Epochs: 2, LR: 0.01, Batch: 128, GridFactors: "0.5,1", GridEpochs: 2},
				UMAP: Unleash{Epochs: 2, LR: 0.1, Batch: 128, GridFactors: "0.5,1", GridEpochs: 2, Keep: 0.8, ScoreInit: "magnitude"},
			},
		},
	},
	"full": {
		Name: "full", What: "all the data, ResNet-20, longer schedules, three seeds (many hours on 2 cores)",
		Seeds: []uint64{1, 2, 3},
		Sets: []Setup{
			{
				Key: fashionKey, Title: "Fashion-MNIST (ID) vs MNIST", Arch: "cnn28", Width: 16,
				Train: 55000, IDVal: 5000, OODVal: 5000, OODTest: 5000,
				Epochs: 30, Batch: 128, LR: 0.1, BestMaxAccDrop: 5,
				UM:   Unleash{Epochs: 10, LR: 0.01, Batch: 128, GridFactors: "0.25,0.5,0.75,1", GridEpochs: 10},
				UMAP: Unleash{Epochs: 10, LR: 0.1, Batch: 128, GridFactors: "0.25,0.5,0.75,1", GridEpochs: 10, Keep: 0.8, ScoreInit: "magnitude"},
			},
			{
				Key: cifarKey, Title: "CIFAR-10 (ID) vs Tiny ImageNet", Arch: "resnet", Width: 16, Blocks: "3",
				Train: 4500, IDVal: 500, OODVal: 5000, OODTest: 5000,
				Epochs: 60, Batch: 128, LR: 0.1, BestMaxAccDrop: 5,
				UM:   Unleash{Epochs: 10, LR: 0.01, Batch: 128, GridFactors: "0.25,0.5,0.75,1", GridEpochs: 10},
				UMAP: Unleash{Epochs: 10, LR: 0.1, Batch: 128, GridFactors: "0.25,0.5,0.75,1", GridEpochs: 10, Keep: 0.8, ScoreInit: "magnitude"},
			},
		},
	},
}

func modeNames() string {
	var names []string
	for n := range modes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// pick returns the mode with the datasets in only (all when empty) and seeds (the mode's when nil).
func pick(name, only string, seeds []uint64) (Mode, error) {
	if name == "default" { // the name of "short" until 2026-12-06
		name = "short"
	}
	m, ok := modes[name]
	if !ok {
		return Mode{}, fmt.Errorf("unknown mode %q (want %s)", name, modeNames())
	}
	if seeds != nil {
		m.Seeds = seeds
	}
	if only != "" {
		var sets []Setup
		for _, key := range strings.Split(only, ",") {
			found := false
			for _, s := range m.Sets {
				if s.Key == strings.TrimSpace(key) {
					sets, found = append(sets, s), true
				}
			}
			if !found {
				return Mode{}, fmt.Errorf("unknown dataset %q (want %s or %s)", key, fashionKey, cifarKey)
			}
		}
		m.Sets = sets
	}
	return m, nil
}
