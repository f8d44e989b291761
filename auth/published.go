package auth

import "time"

// PublishedUntil is how long the ring's public key is known to stay
// published in Redis (zero before the first Publish). Sign refuses a
// token that would outlive it; /readyz reports a replica whose keys are
// past it as not ready.
func (k *KeyRing) PublishedUntil() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.publishedUntil
}
