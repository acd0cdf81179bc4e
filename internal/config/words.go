package config

import (
	"errors"
	"strings"
)

// SplitWords splits s into words the way a POSIX shell does, without
// expansion: blanks separate words, single quotes keep everything, double
// quotes keep everything but backslash escapes of " \ $ and `, and a
// backslash outside quotes escapes the next character. So
// --proxy-server="http://a b" stays one word.
func SplitWords(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		runes   = []rune(s)
		pending bool // a quoted empty string still makes a word
	)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case r == ' ' || r == '\t' || r == '\n':
			if inWord || pending {
				words = append(words, cur.String())
				cur.Reset()
				inWord, pending = false, false
			}
		case r == '\\':
			if i+1 >= len(runes) {
				return nil, errors.New("trailing backslash: escape it as \\\\ or quote it")
			}
			i++
			if runes[i] != '\n' {
				cur.WriteRune(runes[i])
				inWord = true
			}
		case r == '\'':
			end := indexRune(runes, i+1, '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote: close it with '")
			}
			cur.WriteString(string(runes[i+1 : end]))
			i = end
			inWord, pending = true, true
		case r == '"':
			j := i + 1
			for ; j < len(runes) && runes[j] != '"'; j++ {
				if runes[j] == '\\' && j+1 < len(runes) && strings.ContainsRune("\"\\$`\n", runes[j+1]) {
					j++
					if runes[j] != '\n' {
						cur.WriteRune(runes[j])
					}
					continue
				}
				cur.WriteRune(runes[j])
			}
			if j >= len(runes) {
				return nil, errors.New(`unterminated double quote: close it with "`)
			}
			i = j
			inWord, pending = true, true
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord || pending {
		words = append(words, cur.String())
	}
	return words, nil
}

func indexRune(rs []rune, from int, r rune) int {
	for i := from; i < len(rs); i++ {
		if rs[i] == r {
			return i
		}
	}
	return -1
}
