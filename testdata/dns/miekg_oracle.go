// miekg_oracle reads hex-encoded DNS messages, one per line, and prints what
// miekg/dns v1.1.72 (the version dnstapir EDM uses) makes of each as one JSON
// line: whether Msg.Unpack succeeds, the extended RCODE, EDM's flags word, and
// for each question its name, type, class, dns.IsDomainName verdict and EDM's
// ten label columns (dns.SplitDomainName + reverseLabelsBounded).
//
// It produced the verdicts in miekg_verdicts.jsonl from gen_corpus.py output:
//
//	mkdir oracle && cp miekg_oracle.go oracle/main.go && cd oracle
//	go mod init oracle && go get github.com/miekg/dns@v1.1.72 && go build
//	python3 ../gen_corpus.py 300000 1 | ./oracle > verdicts.jsonl
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"

	"github.com/miekg/dns"
)

type q struct {
	Name   string    `json:"name"`
	Qtype  uint16    `json:"qtype"`
	Qclass uint16    `json:"qclass"`
	Valid  bool      `json:"valid"`
	Labels []*string `json:"labels"`
}

type out struct {
	Ok    bool   `json:"ok"`
	ID    uint16 `json:"id"`
	Rcode int    `json:"rcode"`
	Flags uint16 `json:"flags"`
	Qs    []q    `json:"qs"`
}

// EDM's reverseLabelsBounded.
func reverseLabelsBounded(labels []string, maxLen int) []string {
	if labels == nil {
		return nil
	}
	boundedReverseLabels := []string{}
	remainderElems := 0
	if len(labels) > maxLen {
		remainderElems = len(labels) - maxLen
	}
	for i := len(labels) - 1; i > remainderElems; i-- {
		boundedReverseLabels = append(boundedReverseLabels, labels[i])
	}
	if len(labels) <= maxLen {
		boundedReverseLabels = append(boundedReverseLabels, labels[0])
	} else {
		if remainderElems > 0 {
			remainderLabels := []string{}
			for i := remainderElems; i >= 0; i-- {
				remainderLabels = append(remainderLabels, labels[i])
			}
			boundedReverseLabels = append(boundedReverseLabels, strings.Join(remainderLabels, "."))
		}
	}
	return boundedReverseLabels
}

func bits(m *dns.Msg) uint16 {
	b := uint16(m.Opcode)<<11 | uint16(m.Rcode&0xF)
	set := func(c bool, v uint16) {
		if c {
			b |= v
		}
	}
	set(m.Response, 1<<15)
	set(m.Authoritative, 1<<10)
	set(m.Truncated, 1<<9)
	set(m.RecursionDesired, 1<<8)
	set(m.RecursionAvailable, 1<<7)
	set(m.Zero, 1<<6)
	set(m.AuthenticatedData, 1<<5)
	set(m.CheckingDisabled, 1<<4)
	return b
}

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for sc.Scan() {
		wire, err := hex.DecodeString(strings.TrimSpace(sc.Text()))
		if err != nil {
			panic(err)
		}
		m := new(dns.Msg)
		o := out{Qs: []q{}}
		if err := m.Unpack(wire); err == nil {
			o.Ok = true
			o.ID = m.Id
			o.Rcode = m.Rcode
			o.Flags = bits(m)
			for _, qq := range m.Question {
				_, valid := dns.IsDomainName(qq.Name)
				labels := make([]*string, 10)
				for i, l := range reverseLabelsBounded(dns.SplitDomainName(qq.Name), 10) {
					l := l
					labels[i] = &l
				}
				o.Qs = append(o.Qs, q{qq.Name, qq.Qtype, qq.Qclass, valid, labels})
			}
		}
		if err := enc.Encode(o); err != nil {
			panic(err)
		}
	}
}
