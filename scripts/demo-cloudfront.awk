# scripts/demo-cloudfront.awk: CloudFront standard-log lines for scripts/demo
# (the standard column order, records.CloudFrontStandardFields), stamped
# from -v start (Unix seconds) for -v secs seconds at -v rate lines/s.
BEGIN {
	srand(7)
	split("d111111abcdef8.cloudfront.net d222222abcdef8.cloudfront.net d333333abcdef8.cloudfront.net d444444abcdef8.cloudfront.net", dist, " ")
	split("FRA53 IAD89 NRT57 LHR62 SFO5 GRU3", edge, " ")
	ua[1] = "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/120.0.0.0%20Safari/537.36"
	ua[2] = "Mozilla/5.0%20(Macintosh;%20Intel%20Mac%20OS%20X%2010_15_7)%20AppleWebKit/605.1.15%20(KHTML,%20like%20Gecko)%20Version/17.1%20Safari/605.1.15"
	ua[3] = "Mozilla/5.0%20(X11;%20Linux%20x86_64;%20rv:121.0)%20Gecko/20100101%20Firefox/121.0"
	ua[4] = "Mozilla/5.0%20(iPhone;%20CPU%20iPhone%20OS%2017_1%20like%20Mac%20OS%20X)%20AppleWebKit/605.1.15%20(KHTML,%20like%20Gecko)%20Version/17.1%20Mobile/15E148%20Safari/604.1"
	ua[5] = "Mozilla/5.0%20(Linux;%20Android%2014;%20Pixel%208)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/120.0.0.0%20Mobile%20Safari/537.36"
	ua[6] = "Mozilla/5.0%20(compatible;%20bingbot/2.0;%20+http://www.bing.com/bingbot.htm)"
	split("Hit Hit Hit Miss RefreshHit Error", rt, " ")
	n = secs * rate
	for (i = 0; i < n; i++) {
		t = start + 2 + int(i / rate)
		d = dist[1 + int(rand() * rand() * 4)]
		e = edge[1 + int(rand() * 6)]
		u = ua[1 + int(rand() * 6)]
		r = rt[1 + int(rand() * 6)]
		bytes = int(200 + rand() * rand() * 200000)
		ip = "203.0.113." (1 + int(rand() * 40))
		printf "%s\t%s\t%s\t%d\t%s\tGET\t%s\t/img/%d.jpg\t200\t-\t%s\t-\t-\t%s\tdemo%d\t%s\thttps\t300\t0.%03d\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\t%s\tHTTP/2.0\t-\t-\n", \
			strftime("%Y-%m-%d", t, 1), strftime("%H:%M:%S", t, 1), e, bytes, ip, d, int(rand() * 50), u, r, i, d, 5 + int(rand() * 300), r
	}
}
