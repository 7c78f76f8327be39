package tables

import (
	"sort"
	"strconv"
	"strings"
)

// The expression language: condition, filter and key-condition expressions, projection
// expressions and update expressions, with #name and :value substitution.

type tokenKind uint8

const (
	tokEOF tokenKind = iota
	tokIdent
	tokName  // #name
	tokValue // :value
	tokInt
	tokPunct
)

type token struct {
	kind tokenKind
	text string
	pos  int
}

// maxExpressionLen bounds an expression's length as DynamoDB does (4 KB).
const maxExpressionLen = 4096

// maxExpressionDepth bounds nesting so hostile input cannot exhaust the stack.
const maxExpressionDepth = 64

func tokenize(kind, src string) ([]token, error) {
	toks := make([]token, 0, 16)
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{tokIdent, src[i:j], i})
			i = j
		case c == '#' || c == ':':
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			if j == i+1 {
				return nil, syntaxError(kind, src, token{tokPunct, src[i : i+1], i})
			}
			k := tokName
			if c == ':' {
				k = tokValue
			}
			toks = append(toks, token{k, src[i:j], i})
			i = j
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			toks = append(toks, token{tokInt, src[i:j], i})
			i = j
		case c == '<':
			if i+1 < len(src) && (src[i+1] == '=' || src[i+1] == '>') {
				toks = append(toks, token{tokPunct, src[i : i+2], i})
				i += 2
			} else {
				toks = append(toks, token{tokPunct, "<", i})
				i++
			}
		case c == '>':
			if i+1 < len(src) && src[i+1] == '=' {
				toks = append(toks, token{tokPunct, ">=", i})
				i += 2
			} else {
				toks = append(toks, token{tokPunct, ">", i})
				i++
			}
		case strings.IndexByte("()[],.=+-", c) >= 0:
			toks = append(toks, token{tokPunct, src[i : i+1], i})
			i++
		default:
			end := i + 1
			for end < len(src) && src[end]&0xc0 == 0x80 {
				end++
			}
			return nil, validationf("Invalid %s: Invalid character encountered; character: %s, near: %s", kind, strconv.Quote(src[i:end]), strconv.Quote(near(src, i)))
		}
	}
	toks = append(toks, token{kind: tokEOF, pos: len(src)})
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func near(src string, pos int) string {
	end := pos + 12
	if end > len(src) {
		end = len(src)
	}
	start := pos - 8
	if start < 0 {
		start = 0
	}
	return src[start:end]
}

func syntaxError(kind, src string, t token) error {
	text := t.text
	if t.kind == tokEOF {
		text = "<EOF>"
	}
	return validationf("Invalid %s: Syntax error; token: %s, near: %s", kind, strconv.Quote(text), strconv.Quote(near(src, t.pos)))
}

// pathElem is one step of a document path: a map key, or a list index when index >= 0.
type pathElem struct {
	name  string
	index int
}

type docPath []pathElem

func (p docPath) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range p {
		if i > 0 {
			b.WriteString(", ")
		}
		if e.index >= 0 {
			b.WriteString("[" + strconv.Itoa(e.index) + "]")
		} else {
			b.WriteString(e.name)
		}
	}
	b.WriteByte(']')
	return b.String()
}

type operandKind uint8

const (
	operandPath operandKind = iota
	operandValue
	operandSize
	operandIfNotExists
	operandListAppend
	operandPlus
	operandMinus
)

type operand struct {
	kind operandKind
	path docPath
	val  Value
	args []*operand
}

type condKind uint8

const (
	condAnd condKind = iota
	condOr
	condNot
	condCompare
	condBetween
	condIn
	condExists
	condNotExists
	condType
	condBeginsWith
	condContains
)

type cond struct {
	kind condKind
	op   string
	l, r *cond
	args []*operand
}

// exprParser parses one expression; a request's expressions share its substitution maps
// and usage records.
type exprParser struct {
	names      map[string]string
	values     map[string]Value
	usedNames  map[string]bool
	usedValues map[string]bool

	kind  string
	src   string
	toks  []token
	pos   int
	depth int
}

func newExprParser(names map[string]string, values map[string]Value) *exprParser {
	return &exprParser{names: names, values: values, usedNames: map[string]bool{}, usedValues: map[string]bool{}}
}

func (p *exprParser) start(kind, src string) error {
	if len(src) > maxExpressionLen {
		return validationf("Invalid %s: Expression size has exceeded the maximum allowed size; expression size: %d", kind, len(src))
	}
	if strings.TrimSpace(src) == "" {
		return validationf("Invalid %s: The expression can not be empty;", kind)
	}
	toks, err := tokenize(kind, src)
	if err != nil {
		return err
	}
	p.kind, p.src, p.toks, p.pos, p.depth = kind, src, toks, 0, 0
	return nil
}

// checkUnused reports names or values supplied but not used by any expression.
func (p *exprParser) checkUnused() error {
	var unused []string
	for k := range p.names {
		if !p.usedNames[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		return validationf("Value provided in ExpressionAttributeNames unused in expressions: keys: {%s}", strings.Join(unused, ", "))
	}
	for k := range p.values {
		if !p.usedValues[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		return validationf("Value provided in ExpressionAttributeValues unused in expressions: keys: {%s}", strings.Join(unused, ", "))
	}
	return nil
}

func (p *exprParser) peek() token { return p.toks[p.pos] }

func (p *exprParser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *exprParser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tokPunct && t.text == s
}

func (p *exprParser) isKeyword(s string) bool {
	t := p.peek()
	return t.kind == tokIdent && strings.EqualFold(t.text, s)
}

func (p *exprParser) expectPunct(s string) error {
	if !p.isPunct(s) {
		return syntaxError(p.kind, p.src, p.peek())
	}
	p.pos++
	return nil
}

func (p *exprParser) errSyntax() error { return syntaxError(p.kind, p.src, p.peek()) }

func (p *exprParser) enter() error {
	p.depth++
	if p.depth > maxExpressionDepth {
		return validationf("Invalid %s: The expression has redundant parentheses or is nested too deeply;", p.kind)
	}
	return nil
}

func (p *exprParser) leave() { p.depth-- }

// parseCondition parses a whole condition, filter or key-condition expression.
func (p *exprParser) parseCondition(kind, src string) (*cond, error) {
	if err := p.start(kind, src); err != nil {
		return nil, err
	}
	c, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tokEOF {
		return nil, p.errSyntax()
	}
	return c, nil
}

func (p *exprParser) parseOr() (*cond, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("OR") {
		p.pos++
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &cond{kind: condOr, l: l, r: r}
	}
	return l, nil
}

func (p *exprParser) parseAnd() (*cond, error) {
	l, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("AND") {
		p.pos++
		r, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		l = &cond{kind: condAnd, l: l, r: r}
	}
	return l, nil
}

func (p *exprParser) parseNot() (*cond, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if p.isKeyword("NOT") {
		p.pos++
		c, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &cond{kind: condNot, l: c}, nil
	}
	return p.parsePrimary()
}

var conditionFunctions = map[string]condKind{
	"attribute_exists":     condExists,
	"attribute_not_exists": condNotExists,
	"attribute_type":       condType,
	"begins_with":          condBeginsWith,
	"contains":             condContains,
}

func (p *exprParser) parsePrimary() (*cond, error) {
	if p.isPunct("(") {
		p.pos++
		c, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return c, nil
	}
	t := p.peek()
	if t.kind == tokIdent && p.toks[p.pos+1].kind == tokPunct && p.toks[p.pos+1].text == "(" {
		if kind, ok := conditionFunctions[t.text]; ok {
			return p.parseConditionFunction(kind, t.text)
		}
		if t.text != "size" {
			return nil, validationf("Invalid %s: Invalid function name; function: %s", p.kind, t.text)
		}
	}
	left, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	switch {
	case p.isKeyword("BETWEEN"):
		p.pos++
		lo, err := p.parseOperand()
		if err != nil {
			return nil, err
		}
		if !p.isKeyword("AND") {
			return nil, p.errSyntax()
		}
		p.pos++
		hi, err := p.parseOperand()
		if err != nil {
			return nil, err
		}
		if lo.kind == operandValue && hi.kind == operandValue {
			if c, ok := compareScalars(lo.val, hi.val); ok && c > 0 {
				return nil, validationf("Invalid %s: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {%s:%s}, upper bound operand: AttributeValue: {%s:%s}", p.kind, lo.val.T, lo.val.S, hi.val.T, hi.val.S)
			}
		}
		for _, o := range []*operand{left, lo, hi} {
			if err := p.checkOrderable("BETWEEN", o); err != nil {
				return nil, err
			}
		}
		return &cond{kind: condBetween, args: []*operand{left, lo, hi}}, nil
	case p.isKeyword("IN"):
		p.pos++
		if err := p.expectPunct("("); err != nil {
			return nil, err
		}
		args := []*operand{left}
		for {
			o, err := p.parseOperand()
			if err != nil {
				return nil, err
			}
			args = append(args, o)
			if p.isPunct(",") {
				p.pos++
				continue
			}
			break
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		if len(args) > 101 {
			return nil, validationf("Invalid %s: The IN operator is provided with too many operands; number of operands: %d", p.kind, len(args)-1)
		}
		return &cond{kind: condIn, args: args}, nil
	}
	t = p.peek()
	if t.kind == tokPunct {
		switch t.text {
		case "=", "<>", "<", "<=", ">", ">=":
			p.pos++
			right, err := p.parseOperand()
			if err != nil {
				return nil, err
			}
			if t.text != "=" && t.text != "<>" {
				for _, o := range []*operand{left, right} {
					if err := p.checkOrderable(t.text, o); err != nil {
						return nil, err
					}
				}
			}
			return &cond{kind: condCompare, op: t.text, args: []*operand{left, right}}, nil
		}
	}
	return nil, p.errSyntax()
}

func (p *exprParser) checkOrderable(op string, o *operand) error {
	if o.kind == operandValue && !o.val.isScalarKeyType() {
		return validationf("Invalid %s: Incorrect operand type for operator or function; operator or function: %s, operand type: %s", p.kind, op, o.val.T)
	}
	return nil
}

func (p *exprParser) parseConditionFunction(kind condKind, name string) (*cond, error) {
	p.pos += 2
	var args []*operand
	if !p.isPunct(")") {
		for {
			o, err := p.parseOperand()
			if err != nil {
				return nil, err
			}
			args = append(args, o)
			if p.isPunct(",") {
				p.pos++
				continue
			}
			break
		}
	}
	if err := p.expectPunct(")"); err != nil {
		return nil, err
	}
	want := 2
	if kind == condExists || kind == condNotExists {
		want = 1
	}
	if len(args) != want {
		return nil, validationf("Invalid %s: Incorrect number of operands for operator or function; operator or function: %s, number of operands: %d", p.kind, name, len(args))
	}
	if args[0].kind != operandPath {
		t := "size"
		if args[0].kind == operandValue {
			t = args[0].val.T.String()
		}
		return nil, validationf("Invalid %s: Operator or function requires a document path; operator or function: %s, operand type: %s", p.kind, name, t)
	}
	switch kind {
	case condType:
		if args[1].kind != operandValue || args[1].val.T != TypeS {
			return nil, validationf("Invalid %s: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: %s", p.kind, operandTypeName(args[1]))
		}
		if typeFromName(args[1].val.S) == TypeInvalid {
			return nil, validationf("Invalid %s: Invalid attribute type name found; type: %s, valid types: { B,NULL,SS,BOOL,L,BS,N,NS,S,M }", p.kind, args[1].val.S)
		}
	case condBeginsWith:
		if args[1].kind == operandValue && args[1].val.T != TypeS && args[1].val.T != TypeB {
			return nil, validationf("Invalid %s: Incorrect operand type for operator or function; operator or function: begins_with, operand type: %s", p.kind, args[1].val.T)
		}
	}
	return &cond{kind: kind, args: args}, nil
}

func operandTypeName(o *operand) string {
	switch o.kind {
	case operandValue:
		return o.val.T.String()
	case operandSize:
		return "N"
	}
	return "PATH"
}

// parseOperand parses a path, a :value or size(path).
func (p *exprParser) parseOperand() (*operand, error) {
	t := p.peek()
	switch t.kind {
	case tokValue:
		p.pos++
		v, err := p.value(t.text)
		if err != nil {
			return nil, err
		}
		return &operand{kind: operandValue, val: v}, nil
	case tokIdent:
		if t.text == "size" && p.toks[p.pos+1].kind == tokPunct && p.toks[p.pos+1].text == "(" {
			p.pos += 2
			if err := p.enter(); err != nil {
				return nil, err
			}
			arg, err := p.parseOperand()
			p.leave()
			if err != nil {
				return nil, err
			}
			if err := p.expectPunct(")"); err != nil {
				return nil, err
			}
			if arg.kind != operandPath {
				return nil, validationf("Invalid %s: Incorrect operand type for operator or function; operator or function: size, operand type: %s", p.kind, operandTypeName(arg))
			}
			return &operand{kind: operandSize, args: []*operand{arg}}, nil
		}
		fallthrough
	case tokName:
		path, err := p.parsePath()
		if err != nil {
			return nil, err
		}
		return &operand{kind: operandPath, path: path}, nil
	}
	return nil, p.errSyntax()
}

func (p *exprParser) value(tok string) (Value, error) {
	v, ok := p.values[tok]
	if !ok {
		return Value{}, validationf("Invalid %s: An expression attribute value used in expression is not defined; attribute value: %s", p.kind, tok)
	}
	p.usedValues[tok] = true
	return v, nil
}

func (p *exprParser) name(t token) (string, error) {
	if t.kind == tokName {
		n, ok := p.names[t.text]
		if !ok {
			return "", validationf("Invalid %s: An expression attribute name used in the document path is not defined; attribute name: %s", p.kind, t.text)
		}
		p.usedNames[t.text] = true
		return n, nil
	}
	if isReservedWord(t.text) {
		return "", validationf("Invalid %s: Attribute name is a reserved keyword; reserved keyword: %s", p.kind, t.text)
	}
	return t.text, nil
}

// parsePath parses name ( '.' name | '[' int ']' )*.
func (p *exprParser) parsePath() (docPath, error) {
	t := p.next()
	if t.kind != tokIdent && t.kind != tokName {
		p.pos--
		return nil, p.errSyntax()
	}
	n, err := p.name(t)
	if err != nil {
		return nil, err
	}
	path := docPath{{name: n, index: -1}}
	for {
		switch {
		case p.isPunct("."):
			p.pos++
			t := p.next()
			if t.kind != tokIdent && t.kind != tokName {
				p.pos--
				return nil, p.errSyntax()
			}
			n, err := p.name(t)
			if err != nil {
				return nil, err
			}
			path = append(path, pathElem{name: n, index: -1})
		case p.isPunct("["):
			p.pos++
			t := p.next()
			if t.kind != tokInt {
				p.pos--
				return nil, p.errSyntax()
			}
			i, err := strconv.Atoi(t.text)
			if err != nil || i > 1<<20 {
				return nil, validationf("Invalid %s: List index is too large; index: %s", p.kind, t.text)
			}
			if err := p.expectPunct("]"); err != nil {
				return nil, err
			}
			path = append(path, pathElem{index: i})
		default:
			if len(path) > 32 {
				return nil, validationf("Invalid %s: The document path has too many nesting levels; nesting levels: %d", p.kind, len(path))
			}
			return path, nil
		}
	}
}

// parseProjection parses a comma-separated list of document paths.
func (p *exprParser) parseProjection(src string) ([]docPath, error) {
	if err := p.start("ProjectionExpression", src); err != nil {
		return nil, err
	}
	var paths []docPath
	for {
		path, err := p.parsePath()
		if err != nil {
			return nil, err
		}
		paths = append(paths, path)
		if p.isPunct(",") {
			p.pos++
			continue
		}
		break
	}
	if p.peek().kind != tokEOF {
		return nil, p.errSyntax()
	}
	for i := range paths {
		for j := i + 1; j < len(paths); j++ {
			if err := checkOverlap(p.kind, paths[i], paths[j]); err != nil {
				return nil, err
			}
		}
	}
	return paths, nil
}

func checkOverlap(kind string, a, b docPath) error {
	n := len(a)
	if len(b) < n {
		n = len(b)
	}
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			if a[i].index >= 0 != (b[i].index >= 0) {
				return validationf("Invalid %s: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: %s, path two: %s", kind, a, b)
			}
			return nil
		}
	}
	return validationf("Invalid %s: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: %s, path two: %s", kind, a, b)
}

type updateKind uint8

const (
	updateSet updateKind = iota
	updateRemove
	updateAdd
	updateDelete
)

var updateKindNames = [...]string{"SET", "REMOVE", "ADD", "DELETE"}

type updateAction struct {
	kind updateKind
	path docPath
	val  *operand
}

// parseUpdate parses SET, REMOVE, ADD and DELETE clauses, each at most once.
func (p *exprParser) parseUpdate(src string) ([]updateAction, error) {
	if err := p.start("UpdateExpression", src); err != nil {
		return nil, err
	}
	var actions []updateAction
	var seen [4]bool
	for p.peek().kind != tokEOF {
		t := p.peek()
		kind := -1
		if t.kind == tokIdent {
			for i, n := range updateKindNames {
				if strings.EqualFold(t.text, n) {
					kind = i
				}
			}
		}
		if kind < 0 {
			return nil, p.errSyntax()
		}
		if seen[kind] {
			return nil, validationf("Invalid UpdateExpression: The %q section can only be used once in an update expression;", updateKindNames[kind])
		}
		seen[kind] = true
		p.pos++
		for {
			a := updateAction{kind: updateKind(kind)}
			path, err := p.parsePath()
			if err != nil {
				return nil, err
			}
			a.path = path
			switch a.kind {
			case updateSet:
				if err := p.expectPunct("="); err != nil {
					return nil, err
				}
				if a.val, err = p.parseSetValue(); err != nil {
					return nil, err
				}
			case updateAdd, updateDelete:
				vt := p.next()
				if vt.kind != tokValue {
					p.pos--
					return nil, p.errSyntax()
				}
				v, err := p.value(vt.text)
				if err != nil {
					return nil, err
				}
				if a.kind == updateAdd && v.T != TypeN && v.T != TypeSS && v.T != TypeNS && v.T != TypeBS {
					return nil, validationf("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: %s", v.T)
				}
				if a.kind == updateDelete && v.T != TypeSS && v.T != TypeNS && v.T != TypeBS {
					return nil, validationf("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: %s", v.T)
				}
				a.val = &operand{kind: operandValue, val: v}
			}
			actions = append(actions, a)
			if p.isPunct(",") {
				p.pos++
				continue
			}
			break
		}
	}
	for i := range actions {
		for j := i + 1; j < len(actions); j++ {
			if err := checkOverlap("UpdateExpression", actions[i].path, actions[j].path); err != nil {
				return nil, err
			}
		}
	}
	return actions, nil
}

func (p *exprParser) parseSetValue() (*operand, error) {
	l, err := p.parseSetTerm()
	if err != nil {
		return nil, err
	}
	if p.isPunct("+") || p.isPunct("-") {
		op := p.next().text
		r, err := p.parseSetTerm()
		if err != nil {
			return nil, err
		}
		kind := operandPlus
		if op == "-" {
			kind = operandMinus
		}
		for _, o := range []*operand{l, r} {
			if o.kind == operandValue && o.val.T != TypeN {
				return nil, validationf("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: %s, operand type: %s", op, o.val.T)
			}
		}
		return &operand{kind: kind, args: []*operand{l, r}}, nil
	}
	return l, nil
}

func (p *exprParser) parseSetTerm() (*operand, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	t := p.peek()
	if t.kind == tokIdent && p.toks[p.pos+1].kind == tokPunct && p.toks[p.pos+1].text == "(" {
		switch t.text {
		case "if_not_exists":
			p.pos += 2
			path, err := p.parsePath()
			if err != nil {
				return nil, err
			}
			if err := p.expectPunct(","); err != nil {
				return nil, err
			}
			def, err := p.parseSetValue()
			if err != nil {
				return nil, err
			}
			if err := p.expectPunct(")"); err != nil {
				return nil, err
			}
			return &operand{kind: operandIfNotExists, args: []*operand{{kind: operandPath, path: path}, def}}, nil
		case "list_append":
			p.pos += 2
			a, err := p.parseSetValue()
			if err != nil {
				return nil, err
			}
			if err := p.expectPunct(","); err != nil {
				return nil, err
			}
			b, err := p.parseSetValue()
			if err != nil {
				return nil, err
			}
			if err := p.expectPunct(")"); err != nil {
				return nil, err
			}
			for _, o := range []*operand{a, b} {
				if o.kind == operandValue && o.val.T != TypeL {
					return nil, validationf("Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: %s", o.val.T)
				}
			}
			return &operand{kind: operandListAppend, args: []*operand{a, b}}, nil
		default:
			return nil, validationf("Invalid UpdateExpression: Invalid function name; function: %s", t.text)
		}
	}
	switch t.kind {
	case tokValue:
		p.pos++
		v, err := p.value(t.text)
		if err != nil {
			return nil, err
		}
		return &operand{kind: operandValue, val: v}, nil
	case tokIdent, tokName:
		path, err := p.parsePath()
		if err != nil {
			return nil, err
		}
		return &operand{kind: operandPath, path: path}, nil
	}
	return nil, p.errSyntax()
}
