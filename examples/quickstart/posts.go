package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// errPost marks record data that is not a demo post.
var errPost = errors.New("quickstart: not a demo post")

// post is one synthetic social-media post about the launch. Every field is a pure
// function of the demo's seed and the post's ID, so a run can be replayed and a consumed
// record can be checked against what was produced.
type post struct {
	ID     uint64
	Author uint32
	Text   string
	// Meta stands for what a real post carries besides its text (client, language,
	// media references): opaque to the scorer, it brings the record to a realistic size.
	Meta string
}

// Word lists of the synthetic posts and of the scorer. The generator picks the mood of a
// post first and then its words, so the scorer's tallies are meaningful but not trivial
// (negations flip a word's polarity).
var (
	positiveWords = []string{"love", "great", "amazing", "awesome", "fast", "beautiful", "brilliant", "best", "wow", "smooth"}
	negativeWords = []string{"hate", "broken", "slow", "awful", "buggy", "worst", "crashes", "expensive", "boring", "laggy"}
	negators      = []string{"not", "never", "hardly"}
	fillerWords   = []string{"the", "new", "launch", "app", "just", "tried", "today", "my", "friends", "say", "it", "is", "this", "update", "feels", "really", "so", "honestly", "everyone", "here"}
)

// postsAuthors is the number of distinct authors; their IDs are the partition keys.
const postsAuthors = 50_000

// metaAlphabet is the alphabet of the metadata filler.
const metaAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// generatePost returns post id of the run seeded by seed, its encoded record about size
// bytes long (never shorter than its header and text).
func generatePost(seed uint64, id uint64, size int) post {
	r := rand.New(rand.NewPCG(seed, id^0x9e3779b97f4a7c15))
	p := post{ID: id, Author: uint32(r.IntN(postsAuthors))}
	words := 18 + r.IntN(20)
	var b strings.Builder
	b.Grow(words * 7)
	mood := r.IntN(10) // 0-4 positive, 5-7 negative, 8-9 neutral
	for i := 0; i < words; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch n := r.IntN(8); {
		case n == 0 && mood < 5:
			b.WriteString(positiveWords[r.IntN(len(positiveWords))])
		case n == 0 && mood < 8:
			b.WriteString(negativeWords[r.IntN(len(negativeWords))])
		case n == 1 && mood < 8 && r.IntN(4) == 0:
			// "not great" in a negative post, "not slow" in a positive one.
			b.WriteString(negators[r.IntN(len(negators))])
			b.WriteByte(' ')
			if mood < 5 {
				b.WriteString(negativeWords[r.IntN(len(negativeWords))])
			} else {
				b.WriteString(positiveWords[r.IntN(len(positiveWords))])
			}
		default:
			b.WriteString(fillerWords[r.IntN(len(fillerWords))])
		}
	}
	p.Text = b.String()
	if pad := min(size-encodedLen(p), maxPostMeta); pad > 0 {
		off := r.IntN(len(metaPool) - pad + 1)
		p.Meta = metaPool[off : off+pad]
	}
	return p
}

// maxPostMeta bounds a post's metadata, and so the --post-size flag.
const maxPostMeta = 256 << 10

// metaPool is the source of every post's metadata: random characters generated once,
// so a post's metadata is a cheap slice of it.
var metaPool = func() string {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 2*maxPostMeta)
	for i := range b {
		b[i] = metaAlphabet[r.Uint32()&31]
	}
	return string(b)
}()

// encodedLen is the length of p's record data.
func encodedLen(p post) int {
	return len(postMagic) + len(strconv.FormatUint(p.ID, 10)) + 1 + len(strconv.FormatUint(uint64(p.Author), 10)) + 1 + len(p.Text) + 1 + len(p.Meta)
}

// partitionKey is the post's Kinesis partition key: its author, so one author's posts
// stay in order on one shard.
func (p post) partitionKey() string { return "user-" + strconv.FormatUint(uint64(p.Author), 10) }

// postMagic starts every encoded post.
const postMagic = "fp1|"

// appendPost appends p's record data: "fp1|<id>|<author>|<text>|<meta>". The text
// holds no '|'.
func appendPost(dst []byte, p post) []byte {
	dst = append(dst, postMagic...)
	dst = strconv.AppendUint(dst, p.ID, 10)
	dst = append(dst, '|')
	dst = strconv.AppendUint(dst, uint64(p.Author), 10)
	dst = append(dst, '|')
	dst = append(dst, p.Text...)
	dst = append(dst, '|')
	return append(dst, p.Meta...)
}

// decodePost parses record data written by appendPost.
func decodePost(data []byte) (post, error) {
	s := string(data)
	rest, ok := strings.CutPrefix(s, postMagic)
	if !ok {
		return post{}, fmt.Errorf("%w: missing %q prefix", errPost, postMagic)
	}
	idStr, rest, ok := strings.Cut(rest, "|")
	if !ok {
		return post{}, fmt.Errorf("%w: missing author", errPost)
	}
	authorStr, rest, ok := strings.Cut(rest, "|")
	if !ok {
		return post{}, fmt.Errorf("%w: missing text", errPost)
	}
	text, meta, ok := strings.Cut(rest, "|")
	if !ok {
		return post{}, fmt.Errorf("%w: missing metadata", errPost)
	}
	id, err := strconv.ParseUint(idStr, 10, 64)
	if err != nil {
		return post{}, fmt.Errorf("%w: id: %v", errPost, err)
	}
	author, err := strconv.ParseUint(authorStr, 10, 32)
	if err != nil {
		return post{}, fmt.Errorf("%w: author: %v", errPost, err)
	}
	return post{ID: id, Author: uint32(author), Text: text, Meta: meta}, nil
}

// sentiment is the scorer's verdict on one post.
type sentiment int

// The scorer's verdicts.
const (
	sentimentNeutral sentiment = iota
	sentimentPositive
	sentimentNegative
	numSentiments
)

// String returns the verdict's name.
func (s sentiment) String() string {
	switch s {
	case sentimentPositive:
		return "positive"
	case sentimentNegative:
		return "negative"
	case sentimentNeutral:
		return "neutral"
	}
	return "sentiment(" + strconv.Itoa(int(s)) + ")"
}

var (
	positiveSet = wordSet(positiveWords)
	negativeSet = wordSet(negativeWords)
	negatorSet  = wordSet(negators)
)

func wordSet(words []string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// scoreSentiment is the demo's stand-in for a sentiment model: a lexicon score where
// each positive word counts +1, each negative word -1, and a negator just before a word
// flips it. Punctuation and case are ignored.
func scoreSentiment(text string) sentiment {
	score := 0
	negate := false
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r == '\'')
	}) {
		v := 0
		switch {
		case positiveSet[w]:
			v = 1
		case negativeSet[w]:
			v = -1
		case negatorSet[w]:
			negate = true
			continue
		}
		if negate && v != 0 {
			v = -v
		}
		negate = false
		score += v
	}
	switch {
	case score > 0:
		return sentimentPositive
	case score < 0:
		return sentimentNegative
	}
	return sentimentNeutral
}
