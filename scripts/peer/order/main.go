// Command order prints the data order of `oodguard unleash -seed S` on N training images: one
// line per epoch, the permutation unleash/run draws for it (PCG(S, 100+e).Perm(N); without
// augmentation nothing else is drawn), for scripts/peer/um_peer.py -order. Batches are then
// the permutation's consecutive runs of -batch images, the remainder dropped, on both sides.
// Usage: go run ./scripts/peer/order -seed 1 -n 10000 -epochs 10 > order-1.txt
package main

import (
	"bufio"
	"flag"
	"math/rand/v2"
	"os"
	"strconv"
)

func main() {
	seed := flag.Uint64("seed", 1, "unleash -seed")
	n := flag.Int("n", 10000, "training images")
	epochs := flag.Int("epochs", 10, "epochs")
	flag.Parse()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for e := range *epochs {
		rng := rand.New(rand.NewPCG(*seed, 100+uint64(e)))
		for i, v := range rng.Perm(*n) {
			if i > 0 {
				w.WriteByte(' ')
			}
			w.WriteString(strconv.Itoa(v))
		}
		w.WriteByte('\n')
	}
}
