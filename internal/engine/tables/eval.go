package tables

import (
	"strconv"
	"strings"
)

// resolvePath returns the value at path in it.
func resolvePath(it Item, path docPath) (Value, bool) {
	v, ok := it[path[0].name]
	if !ok || path[0].index >= 0 {
		return Value{}, false
	}
	for _, e := range path[1:] {
		if e.index >= 0 {
			if v.T != TypeL || e.index >= len(v.L) {
				return Value{}, false
			}
			v = v.L[e.index]
			continue
		}
		if v.T != TypeM {
			return Value{}, false
		}
		if v, ok = v.M[e.name]; !ok {
			return Value{}, false
		}
	}
	return v, true
}

// resolve evaluates a condition operand.
func (o *operand) resolve(it Item) (Value, bool) {
	switch o.kind {
	case operandValue:
		return o.val, true
	case operandPath:
		return resolvePath(it, o.path)
	case operandSize:
		v, ok := o.args[0].resolve(it)
		if !ok {
			return Value{}, false
		}
		n := 0
		switch v.T {
		case TypeS, TypeB:
			n = len(v.S)
		case TypeL:
			n = len(v.L)
		case TypeM:
			n = len(v.M)
		case TypeSS, TypeNS, TypeBS:
			n = len(v.Set)
		default:
			return Value{}, false
		}
		return Value{T: TypeN, S: strconv.Itoa(n)}, true
	}
	return Value{}, false
}

// eval reports whether it satisfies c. A missing item is an empty one.
func (c *cond) eval(it Item) bool {
	switch c.kind {
	case condAnd:
		return c.l.eval(it) && c.r.eval(it)
	case condOr:
		return c.l.eval(it) || c.r.eval(it)
	case condNot:
		return !c.l.eval(it)
	case condExists:
		_, ok := c.args[0].resolve(it)
		return ok
	case condNotExists:
		_, ok := c.args[0].resolve(it)
		return !ok
	case condType:
		v, ok := c.args[0].resolve(it)
		t, _ := c.args[1].resolve(it)
		return ok && v.T.String() == t.S
	case condBeginsWith:
		v, ok := c.args[0].resolve(it)
		pre, ok2 := c.args[1].resolve(it)
		return ok && ok2 && v.T == pre.T && (v.T == TypeS || v.T == TypeB) && strings.HasPrefix(v.S, pre.S)
	case condContains:
		v, ok := c.args[0].resolve(it)
		x, ok2 := c.args[1].resolve(it)
		if !ok || !ok2 {
			return false
		}
		switch v.T {
		case TypeS, TypeB:
			return x.T == v.T && strings.Contains(v.S, x.S)
		case TypeSS:
			return x.T == TypeS && setHas(v.Set, x.S)
		case TypeNS:
			return x.T == TypeN && setHas(v.Set, x.S)
		case TypeBS:
			return x.T == TypeB && setHas(v.Set, x.S)
		case TypeL:
			for _, e := range v.L {
				if equalValues(e, x) {
					return true
				}
			}
		}
		return false
	case condCompare:
		a, okA := c.args[0].resolve(it)
		b, okB := c.args[1].resolve(it)
		switch c.op {
		case "=":
			return okA && okB && equalValues(a, b)
		case "<>":
			return !(okA && okB && equalValues(a, b))
		}
		if !okA || !okB {
			return false
		}
		r, ok := compareScalars(a, b)
		if !ok {
			return false
		}
		switch c.op {
		case "<":
			return r < 0
		case "<=":
			return r <= 0
		case ">":
			return r > 0
		case ">=":
			return r >= 0
		}
	case condBetween:
		v, ok := c.args[0].resolve(it)
		lo, ok1 := c.args[1].resolve(it)
		hi, ok2 := c.args[2].resolve(it)
		if !ok || !ok1 || !ok2 {
			return false
		}
		r1, okc1 := compareScalars(v, lo)
		r2, okc2 := compareScalars(v, hi)
		return okc1 && okc2 && r1 >= 0 && r2 <= 0
	case condIn:
		v, ok := c.args[0].resolve(it)
		if !ok {
			return false
		}
		for _, o := range c.args[1:] {
			if x, ok := o.resolve(it); ok && equalValues(v, x) {
				return true
			}
		}
	}
	return false
}

// evalSet evaluates the right-hand side of a SET action against the original item.
func (o *operand) evalSet(it Item) (Value, error) {
	switch o.kind {
	case operandValue:
		return o.val, nil
	case operandPath:
		v, ok := resolvePath(it, o.path)
		if !ok {
			return Value{}, validationf("The provided expression refers to an attribute that does not exist in the item")
		}
		return v, nil
	case operandIfNotExists:
		if v, ok := resolvePath(it, o.args[0].path); ok {
			return v, nil
		}
		return o.args[1].evalSet(it)
	case operandListAppend:
		a, err := o.args[0].evalSet(it)
		if err != nil {
			return Value{}, err
		}
		b, err := o.args[1].evalSet(it)
		if err != nil {
			return Value{}, err
		}
		if a.T != TypeL || b.T != TypeL {
			return Value{}, errOperandType
		}
		l := make([]Value, 0, len(a.L)+len(b.L))
		l = append(append(l, a.L...), b.L...)
		return Value{T: TypeL, L: l}, nil
	case operandPlus, operandMinus:
		a, err := o.args[0].evalSet(it)
		if err != nil {
			return Value{}, err
		}
		b, err := o.args[1].evalSet(it)
		if err != nil {
			return Value{}, err
		}
		if a.T != TypeN || b.T != TypeN {
			return Value{}, errOperandType
		}
		return addNumbers(a, b, o.kind == operandMinus)
	}
	return Value{}, errOperandType
}

func addNumbers(a, b Value, subtract bool) (Value, error) {
	da, err := parseNumber(a.S)
	if err != nil {
		return Value{}, err
	}
	db, err := parseNumber(b.S)
	if err != nil {
		return Value{}, err
	}
	if subtract {
		db = negDecimal(db)
	}
	sum, err := addDecimal(da, db)
	if err != nil {
		return Value{}, err
	}
	return Value{T: TypeN, S: sum.String()}, nil
}

// applyUpdate returns a new item: old with actions applied. old is not modified. Every
// right-hand side is evaluated against old, as DynamoDB does.
func applyUpdate(old Item, actions []updateAction) (Item, error) {
	vals := make([]Value, len(actions))
	for i, a := range actions {
		if a.kind == updateSet {
			v, err := a.val.evalSet(old)
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
	}
	it := make(Item, len(old)+len(actions))
	for k, v := range old {
		it[k] = v
	}
	for i, a := range actions {
		var err error
		switch a.kind {
		case updateSet:
			err = setPath(it, a.path, vals[i])
		case updateRemove:
			err = removePath(it, a.path)
		case updateAdd:
			err = addPath(it, a.path, a.val.val)
		case updateDelete:
			err = deletePath(it, a.path, a.val.val)
		}
		if err != nil {
			return nil, err
		}
	}
	return it, nil
}

// modifyPath rewrites the value at path with fn, copying every container on the way so
// values shared with older item versions are never changed. fn gets the current value
// (ok false when absent) and returns the new one, or remove=true to delete it.
func modifyPath(it Item, path docPath, fn func(cur Value, ok bool) (nv Value, remove bool, err error)) error {
	top := path[0].name
	if len(path) == 1 {
		cur, ok := it[top]
		nv, remove, err := fn(cur, ok)
		if err != nil {
			return err
		}
		if remove {
			delete(it, top)
		} else {
			it[top] = nv
		}
		return nil
	}
	cur, ok := it[top]
	if !ok {
		return errBadUpdatePath
	}
	nv, err := modifyIn(cur, path[1:], fn)
	if err != nil {
		return err
	}
	it[top] = nv
	return nil
}

func modifyIn(container Value, path docPath, fn func(cur Value, ok bool) (Value, bool, error)) (Value, error) {
	e := path[0]
	if e.index >= 0 {
		if container.T != TypeL {
			return Value{}, errBadUpdatePath
		}
		l := append([]Value(nil), container.L...)
		if len(path) == 1 {
			var cur Value
			ok := e.index < len(l)
			if ok {
				cur = l[e.index]
			}
			nv, remove, err := fn(cur, ok)
			if err != nil {
				return Value{}, err
			}
			switch {
			case remove && ok:
				l = append(l[:e.index], l[e.index+1:]...)
			case remove:
			case ok:
				l[e.index] = nv
			default:
				l = append(l, nv)
			}
			return Value{T: TypeL, L: l}, nil
		}
		if e.index >= len(l) {
			return Value{}, errBadUpdatePath
		}
		nv, err := modifyIn(l[e.index], path[1:], fn)
		if err != nil {
			return Value{}, err
		}
		l[e.index] = nv
		return Value{T: TypeL, L: l}, nil
	}
	if container.T != TypeM {
		return Value{}, errBadUpdatePath
	}
	m := make(map[string]Value, len(container.M)+1)
	for k, v := range container.M {
		m[k] = v
	}
	if len(path) == 1 {
		cur, ok := m[e.name]
		nv, remove, err := fn(cur, ok)
		if err != nil {
			return Value{}, err
		}
		if remove {
			delete(m, e.name)
		} else {
			m[e.name] = nv
		}
		return Value{T: TypeM, M: m}, nil
	}
	cur, ok := m[e.name]
	if !ok {
		return Value{}, errBadUpdatePath
	}
	nv, err := modifyIn(cur, path[1:], fn)
	if err != nil {
		return Value{}, err
	}
	m[e.name] = nv
	return Value{T: TypeM, M: m}, nil
}

func setPath(it Item, path docPath, v Value) error {
	return modifyPath(it, path, func(Value, bool) (Value, bool, error) { return v, false, nil })
}

func removePath(it Item, path docPath) error {
	err := modifyPath(it, path, func(_ Value, ok bool) (Value, bool, error) { return Value{}, true, nil })
	if err == errBadUpdatePath {
		return nil
	}
	return err
}

func addPath(it Item, path docPath, v Value) error {
	return modifyPath(it, path, func(cur Value, ok bool) (Value, bool, error) {
		if !ok {
			return v, false, nil
		}
		if cur.T != v.T {
			return Value{}, false, errOperandType
		}
		switch v.T {
		case TypeN:
			nv, err := addNumbers(cur, v, false)
			return nv, false, err
		case TypeSS, TypeNS, TypeBS:
			set := append([]string(nil), cur.Set...)
			for _, m := range v.Set {
				if !setHas(set, m) {
					set = append(set, m)
				}
			}
			return Value{T: v.T, Set: set}, false, nil
		}
		return Value{}, false, errOperandType
	})
}

func deletePath(it Item, path docPath, v Value) error {
	return modifyPath(it, path, func(cur Value, ok bool) (Value, bool, error) {
		if !ok {
			return Value{}, true, nil
		}
		if cur.T != v.T {
			return Value{}, false, errOperandType
		}
		set := make([]string, 0, len(cur.Set))
		for _, m := range cur.Set {
			if !setHas(v.Set, m) {
				set = append(set, m)
			}
		}
		if len(set) == 0 {
			return Value{}, true, nil
		}
		return Value{T: v.T, Set: set}, false, nil
	})
}

// project returns the attributes of it named by paths, keeping nested structure.
func project(it Item, paths []docPath) Item {
	if it == nil {
		return nil
	}
	out := Item{}
	for _, p := range paths {
		v, ok := resolvePath(it, p)
		if !ok {
			continue
		}
		if len(p) == 1 {
			out[p[0].name] = v
			continue
		}
		cur, exists := out[p[0].name]
		top, _ := it[p[0].name]
		out[p[0].name] = projectInto(cur, exists, top, p[1:], v)
	}
	return out
}

// projectInto merges the value at path (found in src) into dst, building containers of
// src's shape. Projected list elements are compacted in path order, as DynamoDB does.
func projectInto(dst Value, exists bool, src Value, path docPath, v Value) Value {
	if len(path) == 0 {
		return v
	}
	e := path[0]
	if e.index >= 0 {
		if !exists || dst.T != TypeL {
			dst = Value{T: TypeL}
		}
		child := src.L[e.index]
		dst.L = append(append([]Value(nil), dst.L...), projectInto(Value{}, false, child, path[1:], v))
		return dst
	}
	if !exists || dst.T != TypeM {
		dst = Value{T: TypeM, M: map[string]Value{}}
	}
	m := make(map[string]Value, len(dst.M)+1)
	for k, x := range dst.M {
		m[k] = x
	}
	cur, ok := m[e.name]
	m[e.name] = projectInto(cur, ok, src.M[e.name], path[1:], v)
	return Value{T: TypeM, M: m}
}

// changedAttributes returns, for UPDATED_OLD / UPDATED_NEW, the top-level attributes of
// from that the actions touched.
func changedAttributes(from Item, actions []updateAction) Item {
	if from == nil {
		return nil
	}
	var paths []docPath
	for _, a := range actions {
		paths = append(paths, a.path)
	}
	out := project(from, paths)
	if len(out) == 0 {
		return nil
	}
	return out
}
