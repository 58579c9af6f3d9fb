// Command agecontent backdates content blobs in a STOPPED containerd's metadata DB.
//
// Usage: agecontent META_DB NAMESPACE AGE_SECONDS DIGEST...
//
// containerd (1.x and 2.x) keeps each blob's creation time in its bolt DB under
// v1/<namespace>/content/blob/<digest>, keys "createdat" and "updatedat", as the bytes of Go's
// time.Time.MarshalBinary. `ctr content ls` prints AGE from createdat. This tool sets both keys
// to now-AGE_SECONDS for the given digests. containerd must not be running (it holds the lock).
//
// With AGECONTENT_BUCKET=containers it backdates containers instead (v1/<namespace>/containers/
// <id>, the same two keys; `ctr containers info` shows them as CreatedAt and UpdatedAt), and the
// arguments after AGE_SECONDS are container ids.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "agecontent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 4 {
		return fmt.Errorf("usage: agecontent META_DB NAMESPACE AGE_SECONDS DIGEST")
	}
	path, ns := args[0], args[1]
	age, err := strconv.ParseInt(args[2], 10, 64)
	if err != nil {
		return fmt.Errorf("bad AGE_SECONDS %q: %w", args[2], err)
	}
	digests := args[3:]
	stamp, err := time.Now().UTC().Add(-time.Duration(age) * time.Second).MarshalBinary()
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		names := []string{"v1", ns, "content", "blob"}
		if os.Getenv("AGECONTENT_BUCKET") == "containers" {
			names = []string{"v1", ns, "containers"}
		}
		blobs := bucket(tx, names...)
		if blobs == nil {
			return fmt.Errorf("no bucket %v in %s", names, path)
		}
		for _, d := range digests {
			b := blobs.Bucket([]byte(d))
			if b == nil {
				return fmt.Errorf("no %s %s in namespace %s", names[len(names)-1], d, ns)
			}
			if err := b.Put([]byte("createdat"), stamp); err != nil {
				return err
			}
			if err := b.Put([]byte("updatedat"), stamp); err != nil {
				return err
			}
		}
		return nil
	})
}

func bucket(tx *bolt.Tx, names ...string) *bolt.Bucket {
	var b *bolt.Bucket
	for i, n := range names {
		if i == 0 {
			b = tx.Bucket([]byte(n))
		} else {
			b = b.Bucket([]byte(n))
		}
		if b == nil {
			return nil
		}
	}
	return b
}
