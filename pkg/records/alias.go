package records

// PayloadAliaser is implemented by every Decoder of this package.
//
// By default a decoded Record's strings slice one copy of the payload: the
// caller may reuse the payload buffer as soon as Decode returns. With
// AliasPayload(true) they slice the payload itself when no field needs
// unescaping, saving that allocation and copy per record (a third of a
// record's decoding cost and most of its garbage on access-log lines).
// The caller must then leave the payload unmodified for as long as the
// Record's strings are used; a Record's strings still must be copied
// (strings.Clone) to keep them, as without aliasing, or they pin the
// payload in memory.
type PayloadAliaser interface {
	AliasPayload(on bool)
}

var (
	_ PayloadAliaser = (*CombinedDecoder)(nil)
	_ PayloadAliaser = (*CloudFrontDecoder)(nil)
	_ PayloadAliaser = (*ClickstreamDecoder)(nil)
	_ PayloadAliaser = (*OrderCSVDecoder)(nil)
	_ PayloadAliaser = (*OrderJSONDecoder)(nil)
	_ PayloadAliaser = (*AutoDecoder)(nil)
	_ PayloadAliaser = (*JSONDecoder)(nil)
)

// AliasPayload implements PayloadAliaser.
func (d *CombinedDecoder) AliasPayload(on bool) { d.tab.alias = on }

// AliasPayload implements PayloadAliaser.
func (d *CloudFrontDecoder) AliasPayload(on bool) { d.tab.alias = on }

// AliasPayload implements PayloadAliaser.
func (d *ClickstreamDecoder) AliasPayload(on bool) { d.tab.alias = on }

// AliasPayload implements PayloadAliaser.
func (d *OrderCSVDecoder) AliasPayload(on bool) { d.tab.alias = on }

// AliasPayload implements PayloadAliaser.
func (d *OrderJSONDecoder) AliasPayload(on bool) { d.tab.alias = on }

// AliasPayload implements PayloadAliaser.
func (d *JSONDecoder) AliasPayload(on bool) { d.tab.alias = on }

// AliasPayload implements PayloadAliaser for every format it sniffs.
func (d *AutoDecoder) AliasPayload(on bool) {
	d.combined.AliasPayload(on)
	d.cloudfront.AliasPayload(on)
	d.clickstream.AliasPayload(on)
	d.ordersCSV.AliasPayload(on)
	d.ordersJSON.AliasPayload(on)
}
