package main

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// s3put is a test program: `s3put BUCKET KEY` creates BUCKET on the S3
// server at $S3_ENDPOINT and puts an object KEY in it, the way another tool
// would, so scripts can set up a bucket that is not acco's.
func s3put() int {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: s3put BUCKET KEY")
		return 2
	}
	ctx := context.Background()
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(os.Getenv("S3_ENDPOINT")),
		Region:       "gra",
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
	})
	bucket, key := os.Args[1], os.Args[2]
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader([]byte("not acco's"))}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
