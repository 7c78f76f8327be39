package producer

// keySet is the set of partition-key hashes (krec.kh) an ordered plain shard has in
// flight: added as a call takes a record, looked up for every record a call might take,
// removed as the call settles. It is an open-addressing table of the hashes themselves
// (linear probing, deletion by shifting back the entries after the removed one, so no
// tombstones accumulate), kept at most half full: a lookup reads one or two slots of one
// array instead of a map's groups and control words. The hashes come from maphash, so
// their low bits index the table as they are. The zero hash, which marks an empty slot,
// is kept apart.
type keySet struct {
	slots []uint64 // len is a power of two, or 0 before the first add
	n     int      // hashes in slots
	zero  bool     // whether the hash 0 is in the set
}

// minKeySlots is the table a shard starts with: room for 32 keys in flight.
const minKeySlots = 64

func (s *keySet) has(h uint64) bool {
	if h == 0 {
		return s.zero
	}
	if s.n == 0 {
		return false
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (s *keySet) add(h uint64) {
	if h == 0 {
		s.zero = true
		return
	}
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return
		case 0:
			s.slots[i] = h
			s.n++
			return
		}
	}
}

func (s *keySet) remove(h uint64) {
	if h == 0 {
		s.zero = false
		return
	}
	if s.n == 0 {
		return
	}
	mask := uint64(len(s.slots) - 1)
	i := h & mask
	for s.slots[i] != h {
		if s.slots[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	// Shift back every entry of the run after i that may sit at i: one whose home slot
	// is not cyclically in (i, j].
	for j := (i + 1) & mask; s.slots[j] != 0; j = (j + 1) & mask {
		home := s.slots[j] & mask
		if (j-home)&mask >= (j-i)&mask {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = 0
	s.n--
}

// len returns how many hashes the set holds.
func (s *keySet) len() int {
	if s.zero {
		return s.n + 1
	}
	return s.n
}

func (s *keySet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(minKeySlots, 2*len(old)))
	s.n = 0
	mask := uint64(len(s.slots) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = h
		s.n++
	}
}
