package gateway

// identityKey names a credential that is the same on every connection
// that presents it.
type identityKey struct{ user, method string }

// shareIdentity returns id as a pointer, the same for every session of a
// credential without claims or expiry (static tokens, Basic users,
// NoAuth): a million connections with one token hold one Identity. Such
// credentials come from the configuration, so the map is as small as it.
// A JWT's identity carries its own claims and is not shared.
func (g *Gateway) shareIdentity(id Identity) *Identity {
	if id.Claims != nil || !id.Expires.IsZero() {
		return &id
	}
	k := identityKey{id.User, id.Method}
	if v, ok := g.identities.Load(k); ok {
		return v.(*Identity)
	}
	v, _ := g.identities.LoadOrStore(k, &id)
	return v.(*Identity)
}
