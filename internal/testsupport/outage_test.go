package testsupport

import "testing"

func TestCheckOutageSequence(t *testing.T) {
	const g = GapMark
	tests := []struct {
		name    string
		seq     []int
		wantErr bool
	}{
		{name: "everything", seq: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{name: "everything with a gap notice", seq: []int{0, 1, 2, 3, g, 4, 5, 6, 7, 8, 9}},
		{name: "hole at the kill with a gap notice", seq: []int{0, 1, 2, 3, g, 6, 7, 8, 9}},
		{name: "hole at the kill without a notice", seq: []int{0, 1, 2, 3, 6, 7, 8, 9}, wantErr: true},
		{name: "hole after the kill", seq: []int{0, 1, 2, 3, 4, 5, g, 7, 8, 9}, wantErr: true},
		{name: "hole too long before the kill", seq: []int{0, g, 3, 4, 5, 6, 7, 8, 9}, wantErr: true},
		{name: "missing tail", seq: []int{0, 1, 2, 3, 4, 5, 6, 7, 8}, wantErr: true},
		{name: "repeat", seq: []int{0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9}, wantErr: true},
		{name: "out of order", seq: []int{0, 1, 2, 4, 3, 5, 6, 7, 8, 9}, wantErr: true},
		{name: "never published", seq: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, wantErr: true},
		{name: "nothing", seq: nil, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// 10 records; Redis was gone after 6; holes allowed within 3 before.
			err := CheckOutageSequence(tc.seq, 10, 6, 3)
			if (err != nil) != tc.wantErr {
				t.Fatalf("CheckOutageSequence(%v) = %v, want error %v", tc.seq, err, tc.wantErr)
			}
		})
	}
}
