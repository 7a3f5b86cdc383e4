#include "api/http/router.h"

#include <gtest/gtest.h>

namespace gojodb::http {
namespace {

TEST(RouterTest, KeyRoutes) {
  auto m = MatchRoute("PUT", "/v1/collections/users/keys/a%2Fb?if_version=0&request_id=r");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->route, Route::kKeyPut);
  EXPECT_EQ(m->collection, "users");
  EXPECT_EQ(m->key, "a/b");
  EXPECT_EQ(m->query.at("if_version"), "0");
  // Unescaped slashes after /keys/ belong to the key.
  EXPECT_EQ(MatchRoute("GET", "/v1/collections/c/keys/user/42")->key, "user/42");
  auto b64 = MatchRoute("GET", "/v1/collections/c/keys?key_base64=AP8%3D");
  ASSERT_TRUE(b64.ok());
  EXPECT_EQ(b64->route, Route::kKeyGet);
  EXPECT_EQ(b64->key, std::string("\0\xff", 2));
  EXPECT_EQ(MatchRoute("DELETE", "/v1/collections/c/keys/k")->route, Route::kKeyDelete);
  EXPECT_EQ(MatchRoute("GET", "/v1/collections/c/keys?prefix=a&limit=3")->route, Route::kScan);
}

TEST(RouterTest, CollectionAndMiscRoutes) {
  EXPECT_EQ(MatchRoute("GET", "/v1/collections")->route, Route::kCollectionList);
  EXPECT_EQ(MatchRoute("POST", "/v1/collections")->route, Route::kCollectionCreate);
  EXPECT_EQ(MatchRoute("GET", "/v1/collections/x")->route, Route::kCollectionDescribe);
  EXPECT_EQ(MatchRoute("DELETE", "/v1/collections/x")->route, Route::kCollectionDrop);
  EXPECT_EQ(MatchRoute("POST", "/v1/collections/x/indexes")->route, Route::kIndexCreate);
  EXPECT_EQ(MatchRoute("POST", "/v1/collections/x/indexes?wait_ms=5")->route, Route::kIndexCreate);
  auto drop = MatchRoute("DELETE", "/v1/collections/x/indexes/by%20age");
  ASSERT_TRUE(drop.ok());
  EXPECT_EQ(drop->route, Route::kIndexDrop);
  EXPECT_EQ(drop->index, "by age");
  EXPECT_EQ(MatchRoute("GET", "/v1/collections/x/indexes").status().code(),
            StatusCode::kUnimplemented)
      << "method not allowed";
  EXPECT_FALSE(MatchRoute("POST", "/v1/collections/x/indexes?nope=1").ok());
  EXPECT_FALSE(MatchRoute("DELETE", "/v1/collections/x/indexes/").ok());
  EXPECT_EQ(MatchRoute("POST", "/v1/batch")->route, Route::kBatch);
  EXPECT_EQ(MatchRoute("GET", "/healthz")->route, Route::kHealthz);
  EXPECT_EQ(MatchRoute("GET", "/metrics")->route, Route::kMetrics);
  EXPECT_EQ(MatchRoute("POST", "/v1/txn/begin")->route, Route::kTxnBegin);
  EXPECT_EQ(MatchRoute("POST", "/v1/txn")->route, Route::kTxn);
  auto get = MatchRoute("POST", "/v1/txn/ab%2Fc/get");
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->route, Route::kTxnGet);
  EXPECT_EQ(get->txn, "ab/c");
  EXPECT_EQ(MatchRoute("POST", "/v1/txn/t/put")->route, Route::kTxnPut);
  EXPECT_EQ(MatchRoute("POST", "/v1/txn/t/delete")->route, Route::kTxnDelete);
  EXPECT_EQ(MatchRoute("POST", "/v1/txn/t/scan")->route, Route::kTxnScan);
  EXPECT_EQ(MatchRoute("POST", "/v1/txn/t/commit")->route, Route::kTxnCommit);
  EXPECT_EQ(MatchRoute("POST", "/v1/txn/t/rollback")->route, Route::kTxnRollback);
  EXPECT_EQ(MatchRoute("POST", "/v1/txn/t/merge").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(MatchRoute("POST", "/v1/txn//get").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(MatchRoute("GET", "/v1/txn/t/get").status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(MatchRoute("POST", "/v1/txn/t/commit?x=1").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(RouterTest, ErrorsHaveTheRightCodes) {
  EXPECT_EQ(MatchRoute("GET", "/nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(MatchRoute("GET", "/v1/collections/c/rows").status().code(), StatusCode::kNotFound);
  auto wrong = MatchRoute("POST", "/v1/collections/c/keys/k");
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(MatchRoute("PATCH", "/healthz").status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(MatchRoute("GET", "/v1/collections/c/keys/k%zz").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MatchRoute("GET", "/v1/collections/c/keys/k?colour=red").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MatchRoute("GET", "/v1/collections/c/keys?key_base64=!!").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MatchRoute("GET", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MatchRoute("GET", "/v1/collections//keys/k").status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gojodb::http
