"""The lab's pandas cleaning and feature code (the behaviour spec), to compare the warehouse against.

Copied in spirit from lab 2.4's clean_and_transform / compute_features, plus the lab validator's price
range [0, 10000] that the issue makes a cleaning rule.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def lab_clean(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, parse_dates=["timestamp"])
    df = df.drop_duplicates(subset=["transaction_id"], keep="first")
    df = df[df["price"] >= 0]
    df = df[df["price"] <= 10000]
    df = df[df["quantity"] > 0]
    df["payment_method"] = df["payment_method"].fillna("unknown")
    df["total_amount"] = df["price"] * df["quantity"]
    df["date"] = df["timestamp"].dt.date
    df["hour"] = df["timestamp"].dt.hour
    df["day_of_week"] = df["timestamp"].dt.day_of_week  # the lab's dayofweek: Monday = 0
    return df


def lab_features(clean: pd.DataFrame) -> pd.DataFrame:
    customer_features = clean.groupby("customer_id").agg({"transaction_id": "count", "total_amount": ["sum", "mean"]})
    customer_features = customer_features.reset_index()
    customer_features.columns = [
        "customer_id",
        "customer_num_purchases",
        "customer_total_spent",
        "customer_avg_order_value",
    ]
    return clean.merge(customer_features, on="customer_id", how="left")
